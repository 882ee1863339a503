#!/usr/bin/env bash
# The live view as a person sees it, driven through tmux: VM rows with the
# right names and counts, sorting, the VM screen (with real memory-fault
# histograms), filtering, resizing, VMs going away, and a clean exit on q, Ctrl-C and SIGTERM (status 0, terminal
# modes restored, nothing left running or attached).
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
command -v tmux >/dev/null || skip "tmux not installed"

# A private tmux server: the user's sessions are never touched.
SOCK=$T/tmux.sock
SESSION=live
tm() {
	timeout $((10 * SCALE)) tmux -S "$SOCK" "$@"
}
live_cleanup() {
	tm kill-server 2>/dev/null || true
	cleanup
}
trap live_cleanup EXIT

screen() {
	tm capture-pane -p -t "$SESSION"
}

# Waits up to 10 s for the screen to contain (grep -E) the pattern.
# Each live session's bound, memfaulttop's whole run: the first session
# (every screen, five VMMs) within the runner's bound of the whole test.
MF_LIVE_BUDGET=$((100 * SCALE))

# Whether memfaulttop had already ended when a wait failed, and how: a
# blank screen says nothing of it.
ended() {
	local st age=$((SECONDS - LIVE_START))
	[ -f "$T/status" ] || { echo "memfaulttop still runs, ${age}s into its session"; return; }
	st=$(cat "$T/status")
	case $st in
	124) echo "memfaulttop had ended: its ${MF_LIVE_BUDGET}s timeout expired" ;;
	*) echo "memfaulttop had ended with status $st" ;;
	esac
}

# A wait that took long is said, to tell where a slow run spent its time.
waited() {
	local took=$((SECONDS - $2))
	[ "$took" -lt $((2 * SCALE)) ] || echo "slow: $1 took ${took}s"
}

# wait_screen PATTERN [KEY]: KEY is pressed before each look (End, on a
# screen that grows while the test reads it).
wait_screen() {
	local t0=$SECONDS
	for _ in $(seq $((100 * SCALE))); do
		[ -z "${2:-}" ] || keys "$2"
		screen | grep -qE -- "$1" && { waited "/$1/" "$t0"; return 0; }
		sleep 0.1
	done
	screen
	fail "the screen never showed /$1/ in $((SECONDS - t0))s ($(ended))"
}

wait_screen_gone() {
	local t0=$SECONDS
	for _ in $(seq $((100 * SCALE))); do
		screen | grep -qE -- "$1" || { waited "/$1/ gone" "$t0"; return 0; }
		sleep 0.1
	done
	screen
	fail "the screen kept showing /$1/ for $((SECONDS - t0))s ($(ended))"
}

# Line number of the first screen line matching the pattern.
line_of() {
	screen | grep -nE -- "$1" | head -n1 | cut -d: -f1
}

keys() {
	tm send-keys -t "$SESSION" "$@"
}

# Starts memfaulttop in a 160x50 tmux pane; when it ends, the pane records
# its status and the terminal modes it left behind, and stays to be read.
start_live() {
	rm -f "$T/status" "$T/stty"
	LIVE_START=$SECONDS
	tm new-session -d -s "$SESSION" -x 160 -y 50 \
		"timeout --foreground $MF_LIVE_BUDGET $MF -i 0.5 --storm 1000000,1 $*; echo \$? >$T/status.tmp; stty -a >$T/stty; mv $T/status.tmp $T/status" \; \
		set-window-option -t "$SESSION" remain-on-exit on
	local sh tmo
	sh=$(tm display-message -p -t "$SESSION" '#{pane_pid}')
	for _ in $(seq $((50 * SCALE))); do
		tmo=$(pgrep -P "$sh" -x timeout || true)
		[ -n "$tmo" ] && LIVE_PID=$(pgrep -P "$tmo" || true)
		[ -n "${LIVE_PID:-}" ] && break
		sleep 0.1
	done
	[ -n "${LIVE_PID:-}" ] || fail "memfaulttop did not start in tmux: $(screen)"
	CHILDREN+=("$tmo" "$LIVE_PID")
	wait_screen "^memfaulttop .* sort EXITS/s"
}

# The pane's command ended: status 0, a sane terminal, no curses screen left.
check_exit() {
	local how=$1
	for _ in $(seq $((100 * SCALE))); do
		[ -e "$T/status" ] && break
		sleep 0.1
	done
	[ -e "$T/status" ] || fail "memfaulttop did not exit on $how: $(screen)"
	[ "$(cat "$T/status")" = 0 ] || fail "memfaulttop exited with $(cat "$T/status") on $how"
	grep -qE '(^| )icanon( |$)' "$T/stty" || fail "terminal left without icanon after $how"
	grep -qE '(^| )echo( |$)' "$T/stty" || fail "terminal left without echo after $how"
	# tmux redraws the pane after the program left its screen: wait for it.
	for _ in $(seq $((20 * SCALE))); do
		screen | grep -q "tracing KVM exits" && break
		sleep 0.1
	done
	screen | grep -q "tracing KVM exits" || fail "the normal screen is not back after $how"
	! screen | grep -q "PID VCPUS" || fail "the live view stayed on screen after $how"
	kill -0 "$LIVE_PID" 2>/dev/null && fail "memfaulttop still running after $how"
	tm kill-session -t "$SESSION"
	LIVE_PID=
}

before=$(bpf_prog_ids)

start_live
# The VMMs hold their VMs until the test ends them (end_vmm).
start_vmm "$T/alpha.json" --io 3000 --hold 600 -name guest=alpha
alpha=$VMM_PID; alpha_guard=$TIMEOUT_PID
start_vmm "$T/beta.json" --vcpus 2 --io 300 --mmio 30 --hold 600 -name guest=beta,debug-threads=on
beta=$VMM_PID; beta_guard=$TIMEOUT_PID
release_vmms

# Main screen: a row per VM with its pid and vCPUs.
wait_screen "^alpha +$alpha +1 "
wait_screen "^beta +$beta +2 "
screen | grep -qE "^NAME +PID VCPUS PRIVATE/s +SHARED/s +FAULTS MAP>PRIV/s MAP>SHRD/s +CONV/s +FLIPS +EXITS/s TOP EXIT" ||
	fail "no column header: $(screen)"
screen | grep -qE "^VMs [0-9]+ \([0-9]+ shown" || fail "no totals line: $(screen)"
screen | grep -qE "drops 0" || fail "no drops in the header: $(screen)"
echo "main screen:"
screen | sed -n '1,8p'

# Sorting: by name, reversed, by vCPUs.
keys N
wait_screen "sort NAME$"
[ "$(line_of '^alpha ')" -lt "$(line_of '^beta ')" ] || fail "N: alpha not above beta: $(screen)"
keys N
wait_screen "sort NAME \(reversed\)"
[ "$(line_of '^beta ')" -lt "$(line_of '^alpha ')" ] || fail "N N: beta not above alpha: $(screen)"
keys V
wait_screen "sort VCPUS"
[ "$(line_of '^beta ')" -lt "$(line_of '^alpha ')" ] || fail "V: beta (2 vCPUs) not first: $(screen)"
keys s
wait_screen "sort PRIVATE/s"

# VM screen of beta (selected first: sort by vCPUs), with the guests' counts.
keys V Home Enter
wait_screen "^VM beta +pid $beta "
wait_screen "^  IO +600 "
wait_screen "^  MMIO +60 "
wait_screen "^  HLT +2 "
for want in "Exits by reason" "private faults by size +\| shared faults by size" \
	"private faults by GPA range \(1G each\) +\| shared faults by GPA range" \
	"MAP_GPA_RANGE to private by size +\| MAP_GPA_RANGE to shared by size"; do
	screen | grep -qE -- "$want" || fail "VM screen lacks /$want/: $(screen)"
done
echo "VM screen:"
screen | sed -n '1,12p'
# Its end: the VMM's conversions, discards and the vCPUs' waits, or what
# this kernel cannot show of them; 'w' ranks the vCPUs by longest wait.
keys End
wait_screen "^VMM conversions \(KVM_SET_MEMORY_ATTRIBUTES\)"
wait_screen "^vCPUs waiting most since start, by total wait|^wait_latency unavailable: "
if screen | grep -q "^vCPUs waiting most"; then
	keys w
	wait_screen "^vCPUs waiting most since start, by longest wait"
fi
echo "VM screen, end:"
screen | grep -v "^ *$" | tail -n 14
keys Home
keys Escape
wait_screen "^NAME +PID"

# Resizing keeps it readable; tiny degrades, tinier says so.
tm resize-window -t "$SESSION" -x 60 -y 15
wait_screen "^NAME +PID VCPUS PRIVATE/s +SHARED/s +FAULTS$"
screen | grep -qE "^alpha +$alpha " || fail "60x15: no alpha row: $(screen)"
[ "$(screen | wc -L)" -le 60 ] || fail "60x15: lines wider than the window"
tm resize-window -t "$SESSION" -x 20 -y 5
wait_screen "^NAME +PID$"
tm resize-window -t "$SESSION" -x 12 -y 3
wait_screen "^terminal too"
tm resize-window -t "$SESSION" -x 160 -y 50
wait_screen "TOP EXIT$"

# Filter by name, then clear it.
keys p a l p h Enter
wait_screen "filter 'alph'"
wait_screen_gone "^beta "
screen | grep -qE "^alpha " || fail "filter alph: alpha gone: $(screen)"
keys p BSpace BSpace BSpace BSpace Enter
wait_screen "^beta "

# The VMMs exit: their VMs leave the view.
end_vmm "$alpha" "$alpha_guard"
end_vmm "$beta" "$beta_guard"
wait_screen_gone "^(alpha|beta) "

# Real memory-fault exits: FAULTS on the VM's row, its histograms by size
# and by GPA range (three pages, each in its own 1 GiB range) on its screen.
# Where the kernel cannot make them (test_faults says why), the rest still runs.
if ! vmm_can --memory-faults 1; then
	echo "no memory-fault screen on this kernel: $(cat "$T/probe")"
else
	start_vmm "$T/gamma.json" --memory-faults 4 --fault-pages 3 --fault-stride 0x40000000 \
		--hold 600 -name guest=gamma
	gamma=$VMM_PID; gamma_guard=$TIMEOUT_PID
	wait_screen "^gamma +$gamma +1 +[0-9.]+ +[0-9.]+ +12 "
	keys p g a m m a Enter
	wait_screen "filter 'gamma'"
	keys Home Enter
	wait_screen "^VM gamma +pid $gamma "
	wait_screen "^  MEMORY_FAULT +12 "
	wait_screen "shared faults 12 "
	for want in "\| +4K -> 8K +12 " "\| +1G-2G 0x40000000-0x7fffffff +4 " \
		"\| +2G-3G 0x80000000-0xbfffffff +4 " "\| +3G-4G 0xc0000000-0xffffffff +4 "; do
		screen | grep -qE -- "$want" || fail "gamma's VM screen lacks /$want/: $(screen)"
	done
	echo "VM screen with memory faults:"
	screen | sed -n '1,12p'
	keys Escape
	wait_screen "^NAME +PID"
	end_vmm "$gamma" "$gamma_guard"
	keys p BSpace BSpace BSpace BSpace BSpace Enter
fi

# A conversion storm (SW-protected VMs only): the VM's row says STORM while
# its ranges flip (this session's --storm makes one flip enough), with its
# conversions a second; its screen lists the ranges that flipped. The rounds
# are paced to last 30 s x scale, longer than the steps that read them: the
# flag is per interval, and 40 unpaced rounds ended before a slow (TCG)
# capture of the screen saw it.
if ! vmm_can --private 1; then
	echo "no conversion-storm rows on this kernel: $(cat "$T/probe")"
else
	start_vmm "$T/delta.json" --private $((300 * SCALE)) --round-gap 100 --hold 600 -name guest=delta
	delta=$VMM_PID; delta_guard=$TIMEOUT_PID
	wait_screen "^!delta +$delta +1 +([0-9.]+[kKMG]? +){5}[0-9.]*[1-9][0-9.]*[kKMG]? +STORM "
	echo "storming row:"
	screen | grep -E "^NAME|^!delta"
	keys p d e l t a Enter
	wait_screen "filter 'delta'"
	keys Home Enter
	wait_screen "^VM delta +pid $delta "
	# The storm's histograms grow a row at a time: End again until seen.
	wait_screen "^GPA ranges \(1G each\) flipping most in the last interval" End
	keys Escape
	end_vmm "$delta" "$delta_guard"
fi

echo "the first live session took $((SECONDS - LIVE_START))s"
keys q
check_exit q

# Ctrl-C, SIGTERM and SIGHUP end it as cleanly.
start_live
keys C-c
check_exit SIGINT
start_live
kill -TERM "$LIVE_PID"
check_exit SIGTERM
# A hang-up (the terminal or ssh session went away) too.
start_live
kill -HUP "$LIVE_PID"
check_exit SIGHUP

check_no_leftovers "$before"
echo "PASS: live view rows, sorting, VM screen, resize, filter, exits"
