#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk
ulimit -l unlimited
echo "@@B kernel $(uname -r)"
F=/tmp/target; echo x > $F
N=$(sed 's/.*bench.n=\([0-9]*\).*/\1/' /proc/cmdline)
taskset -c 1 /bin/openloop $F $N
for r in 1 2 3 4 5; do
  echo "@@B base r=$r n=$N"
  time taskset -c 1 /bin/openloop $F $N
  for bin in /bin/vigil /bin/vigil-main; do
    taskset -c 0 $bin agent --tracing-policy /quiet-open.yaml --server-address "" --export-filename /tmp/ev.json --enable-bpf-stats > /tmp/agent.log 2>&1 &
    pid=$!
    i=0; while ! grep -q "agent ready" /tmp/agent.log && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
    grep -o "via=[^ ]* [^ ]* [^ ]*" /tmp/agent.log | sed 's/^/@@B /'
    echo "@@B $bin r=$r n=$N"
    time taskset -c 1 /bin/openloop $F $N
    /bin/vigil debug progs --interval 1 | grep -i "syscall\|program\|runs" | sed 's/^/@@P /'
    kill -INT $pid; wait $pid
  done
done
echo "@@B done"
poweroff -f
