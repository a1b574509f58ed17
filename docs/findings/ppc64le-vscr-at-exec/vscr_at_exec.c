// SPDX-License-Identifier: GPL-2.0
/*
 * VSCR after execve must be what start_thread() sets: "vr_state.vscr.u[3] = 0x00010000; Java
 * mode disabled", VSCR[NJ]. The kernel loads VSCR with lvx + mtvscr, and mtvscr reads word
 * element 3 of the vector, which a little-endian lvx takes from bytes 0-3 of the save area
 * (u[0]), a big-endian one from bytes 12-15 (u[3]). So a big-endian kernel starts processes
 * with NJ set and a little-endian one with VSCR 0.
 *
 * Cases:
 *   vscr_reads_what_mtvscr_wrote  the test's own reader, in this process (its control);
 *   vscr_nj_after_execve          VSCR is exactly NJ after execve;
 *   vscr_not_inherited_at_exec    a caller's VSCR (NJ and SAT set) does not reach the new image.
 * The last two read VSCR at main() of an execve'd copy of this program (the static C runtime
 * writes no VSCR).
 *
 * Built for tools/testing/selftests/powerpc/ (kselftest.h); prints KTAP. Run as PID 1
 * (regtorture's scripts/reproducer --source), it also prints the REPRO-RESULT line that
 * script reads ("bug" when a case fails) and powers the machine off.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"

#define VSCR_NJ 0x00010000u
#define VSCR_SAT 0x00000001u

/* The word of a 16-byte save area that stvx/lvx put VSCR in (word element 3). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define VSCR_WORD 0
#else
#define VSCR_WORD 3
#endif

static uint32_t get_vscr(void)
{
	uint32_t w[4] __attribute__((aligned(16))) = { 0 };

	__asm__ volatile("mfvscr 0\n\tstvx 0,0,%0" : : "r"(w) : "v0", "memory");
	return w[VSCR_WORD];
}

static void set_vscr(uint32_t x)
{
	uint32_t w[4] __attribute__((aligned(16))) = { 0 };

	w[VSCR_WORD] = x;
	__asm__ volatile("lvx 0,0,%0\n\tmtvscr 0" : : "r"(w) : "v0", "memory");
}

/* This program's path, for execve where /proc is not mounted (run as /init). */
static const char *self;

/* Execve this program with "--report" after setting VSCR to `before`; the child's VSCR. */
static int vscr_after_execve(uint32_t before, uint32_t *after)
{
	int fd[2], status;
	char buf[32] = { 0 };
	pid_t pid;

	if (pipe(fd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *argv[] = { "vscr_at_exec", "--report", NULL };

		dup2(fd[1], 1);
		set_vscr(before);
		execve("/proc/self/exe", argv, NULL);
		execve(self, argv, NULL);
		_exit(127);
	}
	close(fd[1]);
	if (read(fd[0], buf, sizeof(buf) - 1) <= 0)
		buf[0] = 0;
	close(fd[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	*after = (uint32_t)strtoul(buf, NULL, 16);
	return 0;
}

int main(int argc, char **argv)
{
	int init = getpid() == 1;
	uint32_t v;

	self = argv[0];
	if (argc > 1 && !strcmp(argv[1], "--report")) {
		printf("%08x\n", get_vscr());
		return 0;
	}
	if (init)
		printf("repro: vscr_at_exec kselftest\n");
	ksft_print_header();
	ksft_set_plan(3);
	set_vscr(VSCR_NJ | VSCR_SAT);
	v = get_vscr();
	set_vscr(0);
	ksft_test_result(v == (VSCR_NJ | VSCR_SAT), "vscr_reads_what_mtvscr_wrote (%#x)\n", v);
	if (vscr_after_execve(0, &v))
		ksft_test_result_error("vscr_nj_after_execve (the execve'd copy did not report)\n");
	else if (v == VSCR_NJ)
		ksft_test_result_pass("vscr_nj_after_execve\n");
	else
		ksft_test_result_fail("vscr_nj_after_execve (VSCR %#x, start_thread sets %#x)\n", v, VSCR_NJ);
	if (vscr_after_execve(VSCR_NJ | VSCR_SAT, &v))
		ksft_test_result_error("vscr_not_inherited_at_exec (the execve'd copy did not report)\n");
	else if (!(v & VSCR_SAT))
		ksft_test_result_pass("vscr_not_inherited_at_exec\n");
	else
		ksft_test_result_fail("vscr_not_inherited_at_exec (VSCR %#x: the caller's SAT came through)\n", v);
	if (init) {
		printf("REPRO-RESULT: %s\n", ksft_get_fail_cnt() + ksft_get_error_cnt() ? "bug" : "clean");
		fflush(stdout);
		reboot(RB_POWER_OFF);
	}
	ksft_finished();
}
