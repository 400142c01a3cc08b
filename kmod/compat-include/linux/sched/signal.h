/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Stand-in for <linux/sched/signal.h>, which 4.11 split out of <linux/sched.h>.  Kbuild puts
 * this directory on the include path (searched after the kernel's own directories) only
 * for kernels older than 4.11, where <linux/sched.h> still declares everything; see the
 * 4.11 entry in compat.h.
 */
#include <linux/sched.h>
