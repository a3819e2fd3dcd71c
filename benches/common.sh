# What the benchmark scripts share (load.sh, soak.sh, replicas.sh): sourced, not run.

# Install the Debian packages of the commands named, when they are missing: need CMD[:PACKAGE]...
need() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} (Debian packages)" >&2
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A port another program listens on would be measured instead of us: refuse it, exit 2.
refuse_taken() { # script variable port...
  local script=$1 variable=$2 port
  shift 2
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$script: port $port on 127.0.0.1 is taken by another program; free it or set $variable" >&2
      exit 2
    fi
  done
}
