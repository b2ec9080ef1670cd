/* The UEFI stub's few machine instructions, x86_64 COFF, Microsoft x64
 * calling convention (arguments in RCX, RDX, R8, R9; RSI and RDI are
 * callee-saved), the convention UEFI and the Swift code built for a
 * Windows triple share. The same C names as bootstub/entry.S, so that
 * bootstub/Hardware.swift serves both stubs. */

        .text

        .globl  bs_halt                   /* interrupts off, HLT for good */
bs_halt:
        cli
1:      hlt
        jmp     1b

        .globl  bs_outb                   /* void bs_outb(uint32 port, uint32 value) */
bs_outb:
        mov     %ecx, %r9d
        mov     %edx, %eax
        mov     %r9d, %edx
        outb    %al, %dx
        ret

        .globl  bs_inb                    /* uint32 bs_inb(uint32 port) */
bs_inb:
        mov     %ecx, %edx
        xor     %eax, %eax
        inb     %dx, %al
        ret

        .globl  bs_cpuid                  /* void bs_cpuid(uint32 leaf, uint32 sub, uint32 out[4]) */
bs_cpuid:
        push    %rbx
        mov     %ecx, %eax
        mov     %edx, %ecx
        cpuid
        mov     %eax, 0(%r8)
        mov     %ebx, 4(%r8)
        mov     %ecx, 8(%r8)
        mov     %edx, 12(%r8)
        pop     %rbx
        ret

        .globl  bs_rdmsr                  /* uint64 bs_rdmsr(uint32 msr): only for MSRs CPUID promises */
bs_rdmsr:
        rdmsr
        shl     $32, %rdx
        or      %rdx, %rax
        ret

        .globl  bs_rdtsc                  /* uint64 bs_rdtsc(void) */
bs_rdtsc:
        rdtsc
        shl     $32, %rdx
        or      %rdx, %rax
        ret

        .globl  memcpy                    /* void *memcpy(void *dst, const void *src, size_t n) */
memcpy:
        push    %rsi
        push    %rdi
        mov     %rcx, %rax
        mov     %rcx, %rdi
        mov     %rdx, %rsi
        mov     %r8, %rcx
        rep movsb
        pop     %rdi
        pop     %rsi
        ret

        .globl  memmove                   /* backward when the destination is above an overlapping source */
memmove:
        mov     %rcx, %rax
        sub     %rdx, %rax
        cmp     %r8, %rax                 /* unsigned dst - src >= n: forward copy is safe */
        jae     memcpy
        push    %rsi
        push    %rdi
        mov     %rcx, %rax
        lea     -1(%rcx,%r8), %rdi
        lea     -1(%rdx,%r8), %rsi
        mov     %r8, %rcx
        std
        rep movsb
        cld
        pop     %rdi
        pop     %rsi
        ret

        .globl  memset                    /* void *memset(void *dst, int c, size_t n) */
memset:
        push    %rdi
        mov     %rcx, %r9
        mov     %rcx, %rdi
        mov     %edx, %eax
        mov     %r8, %rcx
        rep stosb
        mov     %r9, %rax
        pop     %rdi
        ret

        .globl  memcmp                    /* int memcmp(const void *a, const void *b, size_t n) */
memcmp:
        xor     %eax, %eax
        test    %r8, %r8
        jz      3f
2:      movzbl  (%rcx), %eax
        movzbl  (%rdx), %r9d
        sub     %r9d, %eax
        jnz     3f
        inc     %rcx
        inc     %rdx
        dec     %r8
        jnz     2b
3:      ret

/* Frames over 4 KiB call ___chkstk_ms (RAX = size) before moving RSP, for
 * Windows' guard pages. UEFI commits the whole stack up front: nothing to
 * probe. */
        .globl  ___chkstk_ms
___chkstk_ms:
        ret

/* void arc4random_buf(void *buf, size_t n): Embedded Swift's Hasher seeds
 * itself from it. The stub hashes no Set or Dictionary; the seed is TSC
 * bytes, not secret randomness. */
        .globl  arc4random_buf
arc4random_buf:
        mov     %rdx, %r8
        mov     %rcx, %r9
        test    %r8, %r8
        jz      5f
4:      rdtsc
        mov     %al, (%r9)
        inc     %r9
        dec     %r8
        jnz     4b
5:      ret

/* The stub uses no heap. Embedded Swift's runtime refers to these for
 * class instances and boxes the stub never creates: an allocation fails
 * (ENOMEM), which the runtime turns into a trap. */
        .globl  posix_memalign
posix_memalign:
        mov     $12, %eax
        ret

        .globl  free
free:
        ret
