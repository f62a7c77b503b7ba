/* Reading and writing another process's memory.
 *
 * Reads use process_vm_readv (one syscall, no ptrace-stop needed); pages it
 * cannot read (PROT_NONE, or a partial failure) are retried through
 * /proc/PID/mem. Writes always go through /proc/PID/mem: the kernel forces
 * them through page protections (FOLL_FORCE; this kernel has
 * CONFIG_PROC_MEM_ALWAYS_FORCE), so read-only text is written without an
 * mprotect in the target (which would fail under MemoryDenyWriteExecute),
 * and a file-backed page gets a private copy-on-write copy.
 * process_vm_writev cannot do that: it fails with EFAULT on r-x pages. */
#include "proc-internal.h"

#include <sys/uio.h>

static int mem_pread(struct proc *p, uint64_t addr, void *buf, size_t size)
{
        size_t done = 0;

        while (done < size) {
                ssize_t n = pread(p->mem_fd, (char *)buf + done, size - done,
                                  (off_t)(addr + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EIO ? -EFAULT : -errno;
                }
                if (n == 0)
                        return -EFAULT;
                done += (size_t)n;
        }
        return 0;
}

int proc_read(struct proc *p, uint64_t addr, void *buf, size_t size)
{
        struct iovec local = { .iov_base = buf, .iov_len = size };
        struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = size };
        ssize_t n;

        if (size == 0)
                return 0;
        if (addr + size < addr)
                return -EFAULT;
        n = process_vm_readv(p->pid, &local, 1, &remote, 1, 0);
        if (n == (ssize_t)size)
                return 0;
        if (n < 0 && errno == ESRCH)
                return -ESRCH;
        if (p->mem_fd < 0)
                return -EFAULT;
        return mem_pread(p, addr, buf, size);
}

int proc_write(struct proc *p, uint64_t addr, const void *buf, size_t size)
{
        size_t done = 0;

        if (addr + size < addr)
                return -EFAULT;
        if (p->mem_fd < 0)
                return -EBADF;
        while (done < size) {
                ssize_t n = pwrite(p->mem_fd, (const char *)buf + done, size - done,
                                   (off_t)(addr + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EIO ? -EFAULT : -errno;
                }
                if (n == 0)
                        return -EFAULT;
                done += (size_t)n;
        }
        return 0;
}
