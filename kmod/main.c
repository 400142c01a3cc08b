// SPDX-License-Identifier: GPL-2.0-only
/*
 * main.c - falconet.ko: module parameters, init/exit and CPU hotplug.
 *
 * Parameters:
 *   ring_bytes  bytes of ring per possible CPU, a power of two >= 64 KiB (default 8 MiB);
 *               allocated on the first open of /dev/falconet, freed on unload.
 *   snaplen     initial string snaplen (the reader sets its own with an ioctl).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/cpu.h>
#include <linux/percpu.h>
#include <linux/log2.h>
#include <linux/limits.h>
#include "falconet.h"
#include "compat.h"

struct fnet_state fnet;

static unsigned long ring_bytes = 8UL << 20;
module_param(ring_bytes, ulong, 0444);
MODULE_PARM_DESC(ring_bytes, "ring size per CPU in bytes, power of two >= 65536 (default 8 MiB)");

static uint snaplen = FNET_DEFAULT_SNAPLEN;
module_param(snaplen, uint, 0444);
MODULE_PARM_DESC(snaplen, "initial max bytes per string argument (1..16384, default 4096)");

#ifdef FNET_HAVE_CPUHP
static enum cpuhp_state fnet_hp_state;

static int fnet_cpu_online(unsigned int cpu)
{
	fnet_ring_set_online(cpu, true);
	return 0;
}

static int fnet_cpu_offline(unsigned int cpu)
{
	/* The ring stays: unread records of an offline CPU can still be consumed. */
	fnet_ring_set_online(cpu, false);
	return 0;
}

static int fnet_hotplug_init(void)
{
	int ret = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "falconet:online",
					    fnet_cpu_online, fnet_cpu_offline);

	if (ret < 0)
		return ret;
	fnet_hp_state = ret;
	return 0;
}

static void fnet_hotplug_exit(void)
{
	cpuhp_remove_state_nocalls(fnet_hp_state);
}
#else
/* Before 4.10: CPU notifiers. */
static int fnet_cpu_notify(struct notifier_block *nb, unsigned long action, void *hcpu)
{
	switch (action & ~CPU_TASKS_FROZEN) {
	case CPU_ONLINE:
		fnet_ring_set_online((long)hcpu, true);
		break;
	case CPU_DEAD:
		fnet_ring_set_online((long)hcpu, false);
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block fnet_cpu_nb = { .notifier_call = fnet_cpu_notify };

static int fnet_hotplug_init(void)
{
	register_hotcpu_notifier(&fnet_cpu_nb);
	return 0;
}

static void fnet_hotplug_exit(void)
{
	unregister_hotcpu_notifier(&fnet_cpu_nb);
}
#endif

static int __init fnet_init(void)
{
	int err;

	if (!is_power_of_2(ring_bytes) || ring_bytes < (64UL << 10) || ring_bytes > (1UL << 30)) {
		pr_err(FNET_NAME ": ring_bytes=%lu must be a power of two between 64 KiB and 1 GiB\n",
		       ring_bytes);
		return -EINVAL;
	}
	if (snaplen < 1 || snaplen > FNET_MAX_SNAPLEN) {
		pr_err(FNET_NAME ": snaplen=%u must be between 1 and %d\n", snaplen,
		       FNET_MAX_SNAPLEN);
		return -EINVAL;
	}
	mutex_init(&fnet.lock);
	init_waitqueue_head(&fnet.wq);
	fnet.data_size = ring_bytes;
	fnet.snaplen = snaplen;
	fnet.interest[0] = ~0UL;	/* everything until a reader narrows it */
	fnet.interest[1] = ~0UL;
	fnet_sc_init();

	err = fnet_probes_init();
	if (err)
		return err;
	fnet.scratch = __alloc_percpu(PATH_MAX, 8);
	if (!fnet.scratch)
		return -ENOMEM;
	err = fnet_hotplug_init();
	if (err)
		goto out_scratch;
	err = fnet_device_init();
	if (err)
		goto out_hotplug;
	pr_info(FNET_NAME ": ABI %d, layout %016llx, %lu bytes of ring per CPU\n",
		FALCONET_ABI_VERSION, fnet_layout_hash(), ring_bytes);
	return 0;

out_hotplug:
	fnet_hotplug_exit();
out_scratch:
	free_percpu(fnet.scratch);
	return err;
}

static void __exit fnet_exit(void)
{
	/* No file is open (each holds a module reference), so capture is stopped already;
	 * stop again defensively, then free. */
	fnet_device_exit();
	mutex_lock(&fnet.lock);
	fnet_capture_stop();
	mutex_unlock(&fnet.lock);
	fnet_hotplug_exit();
	fnet_rings_free();
	free_percpu(fnet.scratch);
	pr_info(FNET_NAME ": unloaded\n");
}

module_init(fnet_init);
module_exit(fnet_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("Falconet");
MODULE_DESCRIPTION("Falconet syscall capture into per-CPU ring buffers");
MODULE_VERSION("0.1.0");
