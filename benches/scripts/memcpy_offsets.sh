#!/usr/bin/env bash
# How fast glibc's memcpy copies 64 KiB from every source offset (0..4095) into a 4 KiB-aligned
# destination, on this machine, and which offsets are slow (under 8 GB/s). Run it as it is and
# with GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4294967295 (no `rep movsb`) to compare;
# PIECE=2048 copies in 2 KiB pieces instead. Needs a C compiler (cc). See docs/BENCHMARKS.md.
set -eu
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cat > "$dir/m.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef PIECE
#define PIECE (64 << 10)
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
  const size_t n = 64 << 10, src_len = 16 << 20, dst_len = 4 << 20;
  char *s = aligned_alloc(4096, src_len + 8192), *d = aligned_alloc(4096, dst_len + 8192);
  memset(s, 1, src_len + 8192); memset(d, 0, dst_len + 8192);
  int slow = 0; double worst = 1e9, best = 0;
  for (int off = 0; off < 4096; off++) {
    double t = now(); size_t total = 0;
    for (size_t o = 0; o + n <= src_len; o += n, total += n)
      for (size_t p = 0; p < n; p += PIECE) memcpy(d + total % dst_len + p, s + o + off + p, PIECE);
    double gbs = total / (now() - t) / 1e9;
    if (off > 0 && gbs < 8) { if (slow < 20) printf("slow: source offset %d: %.1f GB/s\n", off, gbs); slow++; }
    if (off > 0 && gbs < worst) worst = gbs;
    if (gbs > best) best = gbs;
  }
  printf("%d of 4095 offsets under 8 GB/s; slowest %.1f GB/s, fastest %.1f GB/s\n", slow, worst, best);
  return 0;
}
C
cc -O2 ${PIECE:+-DPIECE=$PIECE} -o "$dir/m" "$dir/m.c"
"$dir/m"
