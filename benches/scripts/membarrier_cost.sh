#!/usr/bin/env bash
# What one membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) costs on this machine: the system call
# glommio 0.9 made before every executor sleep (third_party/README.md). Prints ns per call with
# the process alone, then while another of its threads spins (the call interrupts every CPU
# running one of the process's threads), then a full fence for comparison. Needs a C compiler.
set -eu
N=${N:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/mb.c" <<'C'
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static void *spin(void *unused) { (void)unused; while (!atomic_load(&stop)) {} return 0; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double barriers(int n) {
    double t0 = now();
    for (int i = 0; i < n; i++) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    return (now() - t0) / n;
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) { perror("membarrier"); return 1; }
    printf("membarrier, process alone:          %8.0f ns\n", barriers(n));
    pthread_t th; pthread_create(&th, 0, spin, 0); usleep(100000);
    printf("membarrier, another thread running: %8.0f ns\n", barriers(n));
    atomic_store(&stop, 1); pthread_join(th, 0);
    double t0 = now();
    for (int i = 0; i < n; i++) atomic_thread_fence(memory_order_seq_cst);
    printf("fence(SeqCst):                      %8.1f ns\n", (now() - t0) / n);
    return 0;
}
C
cc -O2 -pthread "$work/mb.c" -o "$work/mb"
"$work/mb" "$N"
