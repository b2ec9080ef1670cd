/*
 * The only assembly of the boot stub: the multiboot headers, the two 32-bit
 * entries, and the single instructions Swift cannot express (port I/O,
 * CPUID, RDMSR, RDTSC, the jump into Xen) plus the mem* routines the Swift
 * compiler calls. Everything else is Embedded Swift (bootstub/ Swift files and
 * Sources/BootStubCore). All functions follow the i386 cdecl convention.
 */

#define MB1_MAGIC 0x1BADB002
#define MB1_FLAGS 0x00000003 /* page-align modules, give memory info */
#define MB2_MAGIC 0xE85250D6

        .section .multiboot, "a"
        .balign 8
mb1_header:                               /* iPXE, QEMU -kernel; ELF loaded by the loader */
        .long   MB1_MAGIC
        .long   MB1_FLAGS
        .long   -(MB1_MAGIC + MB1_FLAGS)

        .balign 8
mb2_header:                               /* GRUB's multiboot2 */
        .long   MB2_MAGIC
        .long   0                         /* architecture: i386 protected mode */
        .long   mb2_header_end - mb2_header
        .long   -(MB2_MAGIC + (mb2_header_end - mb2_header))
        .balign 8
        .short  3, 0                      /* entry address tag: our multiboot2 entry */
        .long   12
        .long   _start_mb2
        .balign 8
        .short  6, 0                      /* module alignment tag: page-aligned modules */
        .long   8
        .balign 8
        .short  0, 0                      /* end tag */
        .long   8
mb2_header_end:

        .text
        .globl  _start_mb1, _start_mb2

/* Entered in 32-bit protected mode, paging off: EAX = magic, EBX = info. */
_start_mb1:
        mov     $bootstub_multiboot1, %esi
        jmp     1f
_start_mb2:
        mov     $bootstub_multiboot2, %esi
1:      cli
        cld
        mov     $__stack_top, %esp
        mov     %eax, %edx                /* zero .bss: not every loader does */
        mov     $__bss_start, %edi
        mov     $__bss_end, %ecx
        sub     %edi, %ecx
        xor     %eax, %eax
        rep stosb
        push    %ebx                      /* info */
        push    %edx                      /* magic */
        call    *%esi                     /* Swift; returns only to halt */
        jmp     bs_halt

        .globl  bs_halt
bs_halt:
        cli
2:      hlt
        jmp     2b

        .globl  bs_outb                   /* void bs_outb(uint32 port, uint32 value) */
bs_outb:
        mov     4(%esp), %edx
        mov     8(%esp), %eax
        outb    %al, %dx
        ret

        .globl  bs_inb                    /* uint32 bs_inb(uint32 port) */
bs_inb:
        mov     4(%esp), %edx
        xor     %eax, %eax
        inb     %dx, %al
        ret

        .globl  bs_cpuid                  /* void bs_cpuid(uint32 leaf, uint32 sub, uint32 out[4]) */
bs_cpuid:
        push    %ebx
        push    %edi
        mov     12(%esp), %eax
        mov     16(%esp), %ecx
        cpuid
        mov     20(%esp), %edi
        mov     %eax, 0(%edi)
        mov     %ebx, 4(%edi)
        mov     %ecx, 8(%edi)
        mov     %edx, 12(%edi)
        pop     %edi
        pop     %ebx
        ret

        .globl  bs_rdmsr                  /* uint64 bs_rdmsr(uint32 msr): only for MSRs CPUID promises */
bs_rdmsr:
        mov     4(%esp), %ecx
        rdmsr
        ret

        .globl  bs_rdtsc                  /* uint64 bs_rdtsc(void) */
bs_rdtsc:
        rdtsc
        ret

        .globl  bs_image_start            /* first and last+1 byte of the loaded stub, */
bs_image_start:                           /* stack and .bss included */
        mov     $__stub_start, %eax
        ret
        .globl  bs_image_end
bs_image_end:
        mov     $__stub_end, %eax
        ret

        .globl  bs_enter_kernel           /* void bs_enter_kernel(uint32 entry, uint32 magic, uint32 info) */
bs_enter_kernel:
        mov     4(%esp), %ecx
        mov     8(%esp), %eax
        mov     12(%esp), %ebx
        jmp     *%ecx

        .globl  memcpy                    /* forward copy, 4 bytes at a time then the tail */
memcpy:
        push    %esi
        push    %edi
        mov     12(%esp), %edi
        mov     16(%esp), %esi
        mov     20(%esp), %ecx
        mov     %edi, %eax
        mov     %ecx, %edx
        shr     $2, %ecx
        rep movsl
        mov     %edx, %ecx
        and     $3, %ecx
        rep movsb
        pop     %edi
        pop     %esi
        ret

        .globl  memmove                   /* backward when the destination is above an overlapping source */
memmove:
        mov     4(%esp), %eax
        sub     8(%esp), %eax
        cmp     12(%esp), %eax            /* unsigned dst - src >= n: forward copy is safe */
        jae     memcpy
        push    %esi
        push    %edi
        mov     12(%esp), %edi
        mov     16(%esp), %esi
        mov     20(%esp), %ecx
        lea     -1(%edi,%ecx), %edi
        lea     -1(%esi,%ecx), %esi
        std
        rep movsb
        cld
        mov     12(%esp), %eax
        pop     %edi
        pop     %esi
        ret

        .globl  memset
memset:
        push    %edi
        mov     8(%esp), %edi
        mov     12(%esp), %eax
        mov     16(%esp), %ecx
        mov     %edi, %edx
        rep stosb
        mov     %edx, %eax
        pop     %edi
        ret

        .globl  __lshrdi3                 /* uint64 >> n: -Osize makes these calls on i686 */
__lshrdi3:
        mov     4(%esp), %eax
        mov     8(%esp), %edx
        mov     12(%esp), %ecx
        shrd    %cl, %edx, %eax
        shr     %cl, %edx
        test    $32, %cl
        jz      3f
        mov     %edx, %eax
        xor     %edx, %edx
3:      ret

        .globl  __ashldi3                 /* uint64 << n */
__ashldi3:
        mov     4(%esp), %eax
        mov     8(%esp), %edx
        mov     12(%esp), %ecx
        shld    %cl, %eax, %edx
        shl     %cl, %eax
        test    $32, %cl
        jz      4f
        mov     %eax, %edx
        xor     %eax, %eax
4:      ret

        .section .note.GNU-stack, "", @progbits
