/* A process that sees an AVX2 + FMA machine on an AVX-512 one: an LD_PRELOAD shim for
 * benchmarking the machine kind (AMD EPYC, AVX2 + FMA, no AVX-512) on an Intel host.
 *
 * Libraries choose their kernels from the CPUID instruction (ONNX Runtime's MLAS, oneDNN,
 * MKL, PyTorch's ATen, Rust's std_detect). Some can be capped by an environment variable;
 * ONNX Runtime cannot. This shim makes every CPUID in the process fault (Linux's
 * ARCH_SET_CPUID, on CPUs with the cpuid_fault flag), answers the fault by running the real
 * CPUID with faulting briefly off, and clears the AVX-512 and AMX feature bits (and AVX-VNNI,
 * which the AMD kind lacks) from the answer. Threads inherit the faulting; exec resets it.
 *
 * glibc resolves its own string functions before any constructor runs, so memcpy and friends
 * keep their AVX-512 forms; everything chosen later sees AVX2. A program that installs its
 * own SIGSEGV handler and then runs CPUID dies of the fault (perf does): put such tools
 * outside, e.g. `perf record -- benches/peers/avx2_only.sh modelc bench ...`.
 *
 * Build and use: benches/peers/avx2_only.sh COMMAND [ARGS...]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

static int set_cpuid_faulting(int on) {
    /* ARCH_SET_CPUID's argument is "CPUID allowed", the opposite of faulting. */
    return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

static void masked_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(subleaf));
    if (leaf == 7 && subleaf == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31. */
        b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
               (1u << 30) | (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14. */
        c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24,
         * AMX-INT8 25. */
        d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
               (1u << 25));
    } else if (leaf == 7 && subleaf == 1) {
        /* EAX: AVX-VNNI 4, AVX512_BF16 5. */
        a &= ~((1u << 4) | (1u << 5));
    } else if (leaf == 0xd && subleaf == 0) {
        /* The XSAVE components the CPU supports: drop opmask and ZMM state (bits 5-7) and
         * AMX tile state (17-18), as a CPU without them would report. */
        a &= ~((7u << 5) | (3u << 17));
    }
    out[0] = a, out[1] = b, out[2] = c, out[3] = d;
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *regs = uc->uc_mcontext.gregs;
    /* A faulting CPUID arrives as a general-protection fault (SI_KERNEL) at a mapped
     * instruction; a page fault never does, so its address is not read. */
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t out[4];
        set_cpuid_faulting(0);
        masked_cpuid((uint32_t)regs[REG_RAX], (uint32_t)regs[REG_RCX], out);
        set_cpuid_faulting(1);
        regs[REG_RAX] = out[0];
        regs[REG_RBX] = out[1];
        regs[REG_RCX] = out[2];
        regs[REG_RDX] = out[3];
        regs[REG_RIP] += 2;
        return;
    }
    /* A real fault: let it end the process as it would have. */
    signal(sig, SIG_DFL);
}

__attribute__((constructor)) static void avx2_only_init(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0 || set_cpuid_faulting(1) != 0) {
        fprintf(stderr, "avx2_only: this CPU or kernel cannot make CPUID fault (no cpuid_fault)\n");
        exit(2);
    }
}
