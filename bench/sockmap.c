/*
 * The sockmap shape of tcpbroker-relay-floor: a relay whose process
 * does not touch the data.  A BPF program of type sk_skb, attached to a
 * sockmap, moves each skb in the kernel: what TCP receives goes onto
 * the receive queue of the client's Unix socket, and what the client
 * writes to its Unix socket goes out on TCP.  The client still holds
 * only its end of a Unix socket pair.
 *
 * The program is a dozen instructions, written out here so that the
 * benchmark needs no BPF compiler:
 *
 *	if (skb->family == AF_UNIX)
 *		return bpf_sk_redirect_map(skb, map, SLOT_TCP, 0);
 *	return bpf_sk_redirect_map(skb, map, SLOT_CLIENT, BPF_F_INGRESS);
 */
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/bpf.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "sockmap.h"

/* The map's slots. */
enum { SLOT_CLIENT, SLOT_TCP, SLOT_RELAY, SLOTS };

/* The verifier's log, should it refuse the program: bytes. */
#define SOCKMAP_LOG	4096

static char	verifier_log[SOCKMAP_LOG];

static long
sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static struct bpf_insn
insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn	i;

	memset(&i, 0, sizeof(i));
	i.code = code;
	i.dst_reg = dst & 0xf;
	i.src_reg = src & 0xf;
	i.off = off;
	i.imm = imm;
	return i;
}

static int
load_program(int map)
{
	struct bpf_insn	p[16];
	union bpf_attr	a;
	int		n = 0, branch, fd;

	/* r6 = skb; r2 = skb->family */
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0);
	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1,
	    offsetof(struct __sk_buff, family), 0);
	/* From TCP: into the client's socket's receive queue. */
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, SLOT_CLIENT);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, BPF_F_INGRESS);
	branch = n;
	p[n++] = insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0, AF_UNIX);
	/* From the client: out on TCP. */
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, SLOT_TCP);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0);
	p[branch].off = (int16_t)(n - branch - 1);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0);
	p[n++] = insn(BPF_LD | BPF_DW | BPF_IMM, 2, BPF_PSEUDO_MAP_FD, 0,
	    map);
	p[n++] = insn(0, 0, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_map);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_SKB;
	a.insns = (uint64_t)(uintptr_t)p;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t)"GPL";
	if ((fd = (int)sys_bpf(BPF_PROG_LOAD, &a)) != -1)
		return fd;
	/* Once more, for the verifier's reasons. */
	a.log_buf = (uint64_t)(uintptr_t)verifier_log;
	a.log_size = sizeof(verifier_log);
	a.log_level = 1;
	return (int)sys_bpf(BPF_PROG_LOAD, &a);
}

static int
map_put(int map, uint32_t slot, int fd)
{
	union bpf_attr	a;
	uint32_t	value = (uint32_t)fd;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map;
	a.key = (uint64_t)(uintptr_t)&slot;
	a.value = (uint64_t)(uintptr_t)&value;
	a.flags = BPF_ANY;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

int
sockmap_join(int tcp, int relay_end, int client_end, const char **why)
{
	union bpf_attr	a;
	int		map, prog, saved;

	*why = "map";
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_SOCKMAP;
	a.key_size = sizeof(uint32_t);
	a.value_size = sizeof(uint32_t);
	a.max_entries = SLOTS;
	if ((map = (int)sys_bpf(BPF_MAP_CREATE, &a)) == -1)
		return -1;
	*why = verifier_log;
	if ((prog = load_program(map)) == -1)
		goto fail;
	*why = "attach";
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)map;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_SK_SKB_VERDICT;
	if (sys_bpf(BPF_PROG_ATTACH, &a) == -1)
		goto fail;
	close(prog);		/* the map holds it */
	prog = -1;
	*why = "update";
	if (map_put(map, SLOT_CLIENT, client_end) == -1 ||
	    map_put(map, SLOT_TCP, tcp) == -1 ||
	    map_put(map, SLOT_RELAY, relay_end) == -1)
		goto fail;
	return map;
 fail:
	saved = errno;
	if (prog != -1)
		close(prog);
	close(map);
	errno = saved;
	return -1;
}
