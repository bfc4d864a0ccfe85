/*
 * Calling a function inside another running process, for `leakdiff record
 * --pid`: one of its threads is borrowed with ptrace, made to call the
 * function as if it had called it itself, and given back with every
 * register (vector state included) as it was. Only that thread stops, and
 * only for the length of the calls; the rest of the process keeps running.
 * Also: finding an exported symbol of a module the process has loaded, by
 * reading the module's file and the process's memory map.
 *
 * x86-64 Linux only; elsewhere ld_inject_begin() fails with -ENOSYS.
 */
#ifndef LD_CLI_INJECT_H
#define LD_CLI_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ld_inject;

/*
 * Borrows a thread of process pid that is blocked in a system call never
 * made with a lock of the C library held (sleep, poll, select, read,
 * accept, wait, ...; never futex, see inject.c), so that the called
 * functions may take any lock, malloc's included; tries for up to about a
 * second while no thread waits so. On success stores a new handle in *out
 * and returns 0; the caller must end it with ld_inject_end(). On failure
 * returns a negative errno (-EPERM, -ESRCH, -EBUSY: no thread was waiting
 * in a suitable call, -ENOSYS: not on this architecture) and leaves the
 * process untouched.
 */
int ld_inject_begin(pid_t pid, struct ld_inject **out);

/*
 * Calls fn(args[0], ..., args[nargs - 1]) (at most six integer or pointer
 * arguments) in the borrowed thread and stores what it returned in *ret.
 * Signals that arrive meanwhile are delivered to the thread as they would
 * be to any running code. Returns 0, -ESRCH when the process ended,
 * -ETIMEDOUT when the call did not return within timeout_ms, or another
 * negative errno. After a timeout, a call that returns to the trampoline
 * is left to finish on its own and the thread is let go (no later call
 * can be made); one that does not is abandoned, the thread given its
 * registers back by ld_inject_end().
 */
int ld_inject_call(struct ld_inject *in, uint64_t fn, const uint64_t *args, int nargs, int timeout_ms,
		   uint64_t *ret);

/*
 * Makes the calls that follow return to code written at addr (about 200
 * bytes of executable memory in the process, which must stay mapped while
 * it is in use; 0 goes back to returning to address 0, for a call that
 * unmaps it). That code first makes a system call, where a live recorder
 * stops the thread and takes the result; if the recorder died meanwhile
 * (SIGKILL), nobody stops it, and the code itself puts the thread's
 * general registers back and makes the interrupted system call again, so
 * the thread goes on instead of faulting at address 0. Returns 0 or a
 * negative errno.
 */
int ld_inject_trampoline(struct ld_inject *in, uint64_t addr);

/* Writes len bytes at addr in the process. Returns 0 or a negative errno. */
int ld_inject_write(struct ld_inject *in, uint64_t addr, const void *data, size_t len);

/* Reads up to len - 1 bytes of the C string at addr into buf, NUL-terminated. */
int ld_inject_read_string(struct ld_inject *in, uint64_t addr, char *buf, size_t len);

/*
 * Gives the thread back with its registers as they were before the first
 * call, and stops tracing it; frees in (which may be NULL). Returns 0, or
 * a negative errno when the registers could not be put back.
 */
int ld_inject_end(struct ld_inject *in);

/*
 * The address of the defined, exported symbol sym in the process pid: in
 * the first loaded module whose file name contains module (any module when
 * module is NULL). Returns 0 when there is none.
 */
uint64_t ld_inject_symbol(pid_t pid, const char *module, const char *sym);

/* Whether the process pid maps a file whose name contains part. */
bool ld_inject_maps_has(pid_t pid, const char *part);

#endif
