//! Raw glommio DMA write bandwidth on this disk: 1 MiB aligned writes, one in flight, to a fresh
//! file and to a preallocated one. A reference for `append_throughput`.
//!
//! Usage: `cargo run --release -p spindle-log --example dma_probe -- DIR [MIB]`

use std::time::Instant;

use glommio::io::OpenOptions;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map_or("/tmp/spindle-dma-probe", |s| s));
    let mib: u64 = args.get(2).map_or(1024, |s| s.parse().expect("MIB"));
    std::fs::create_dir_all(&dir).expect("dir");
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            spindle_log::prepare_thread_io(&dir).await.expect("probe");
            for (name, prealloc, depth) in [
                ("fresh", false, 1usize),
                ("fallocated", true, 1),
                ("fresh-depth4", false, 4),
            ] {
                let path = dir.join(name);
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .dma_open(&path)
                    .await
                    .expect("open");
                if prealloc {
                    file.pre_allocate(mib << 20, false)
                        .await
                        .expect("fallocate");
                }
                let file = std::rc::Rc::new(file);
                let t = Instant::now();
                let mut pos = 0u64;
                while pos < mib << 20 {
                    let tasks: Vec<_> = (0..depth)
                        .map(|i| {
                            let f = file.clone();
                            let mut buf = f.alloc_dma_buffer(1 << 20);
                            buf.as_bytes_mut().fill(7);
                            let at = pos + ((i as u64) << 20);
                            glommio::spawn_local(async move {
                                f.write_at(buf, at).await.expect("write")
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await;
                    }
                    pos += (depth as u64) << 20;
                }
                let secs = t.elapsed().as_secs_f64();
                println!("{name}: {:.0} MB/s", (mib << 20) as f64 / secs / 1e6);
                std::fs::remove_file(&path).expect("rm");
            }
        })
        .expect("executor")
        .join()
        .expect("join");
}
