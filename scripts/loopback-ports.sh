# Sourced by scripts/slurm-local.sh and scripts/postgres-local.sh: finding a free port on 127.0.0.1.

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port_from() {  # free_port_from N: the first port from N up that nothing listens on
  local p="$1"
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}
