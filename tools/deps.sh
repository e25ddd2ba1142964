# Sourced by tools/run and tools/test: installs the Debian packages lintel needs when missing.
LINTEL_PACKAGES="build-essential cmake pkg-config libevent-dev libhttp-parser-dev libyaml-dev
libssl-dev libcurl4-openssl-dev libcunit1-dev curl libhiredis-dev redis-server chromium
openssl python3 binutils clang libclang-rt-14-dev"

lintel_install_deps() {
    local missing=()
    for p in $LINTEL_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

lintel_build() {
    local dir=${1:-build}; shift || true
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}
