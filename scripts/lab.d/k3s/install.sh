#!/bin/sh
# The k3s install script as the provision lab plays it (https://get.k3s.io has the real one). Same environment
# variables, files, [INFO] lines and restart rule. Lab hosts reach only the lab: an airgap install puts the binary
# in place first and runs INSTALL_K3S_SKIP_DOWNLOAD=true ./install.sh; an online install downloads from GITHUB_URL,
# which the lab's mirror (scripts/lab mirror) points at itself, as an admin does for a mirror.
#
# Environment: INSTALL_K3S_SKIP_DOWNLOAD, _FORCE_RESTART, _SYMLINK (skip|force), _SKIP_ENABLE, _SKIP_START,
# _VERSION, _BIN_DIR, _BIN_DIR_READ_ONLY, _SYSTEMD_DIR, _EXEC (or arguments), _NAME, _TYPE, _CHANNEL,
# _CHANNEL_URL; GITHUB_URL; K3S_URL (https://; set => agent), K3S_TOKEN / K3S_TOKEN_FILE. Every K3S_* and
# CONTAINERD_* variable, and the proxy variables, are kept in the service's environment file (mode 0600), never
# printed.
set -e
set -o noglob

GITHUB_URL=${GITHUB_URL:-https://github.com/k3s-io/k3s/releases}

info() { echo '[INFO] ' "$@"; }
warn() { echo '[WARN] ' "$@" >&2; }
fatal() { echo '[ERROR] ' "$@" >&2; exit 1; }

# INSTALL_K3S_EXEC's words first (quotes in it are honoured), then this script's own arguments.
exec_words=$(printf '%s' "${INSTALL_K3S_EXEC}" | sed -e 's/[][!#$%&()*;<=>?\\_`{|}]/\\&/g')
eval "set -- ${exec_words} \"\$@\""

find_supervisor() {
    if [ -x /sbin/openrc-run ]; then
        fatal 'OpenRC is not supported by the provision lab stand-in'
    fi
    if [ -x /bin/systemctl ] || type systemctl >/dev/null 2>&1; then
        return
    fi
    fatal 'Can not find systemd or openrc to use as a process supervisor for k3s'
}

# One argument per continuation line, single-quoted, as systemd reads them back.
exec_lines() {
    printf ' \\\n'
    for arg in "$@"; do
        printf '\t%s \\\n' "'$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'"
    done
}

installed_hashes() {
    $SUDO sha256sum "${BIN_DIR}/k3s" "${FILE_K3S_SERVICE}" "${FILE_K3S_ENV}" 2>&1 || true
}

setup_env() {
    case "$1" in
        -* | "")
            if [ -z "${K3S_URL}" ]; then
                CMD_K3S=server
            else
                if [ -z "${K3S_TOKEN}" ] && [ -z "${K3S_TOKEN_FILE}" ]; then
                    fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
                fi
                CMD_K3S=agent
            fi
            ;;
        *)
            CMD_K3S=$1
            shift
            ;;
    esac
    case "${K3S_URL}" in
        "" | https://*) ;;
        *) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
    esac
    CMD_K3S_EXEC="${CMD_K3S}$(exec_lines "$@")"

    if [ -n "${INSTALL_K3S_NAME}" ]; then
        SYSTEM_NAME=k3s-${INSTALL_K3S_NAME}
    elif [ "${CMD_K3S}" = server ]; then
        SYSTEM_NAME=k3s
    else
        SYSTEM_NAME=k3s-${CMD_K3S}
    fi
    case "${SYSTEM_NAME}" in
        *[][!#\$%\&\(\)*\;\<=\>?\\_\`{\|}/[:space:]]*) fatal "Invalid characters for system name: ${SYSTEM_NAME}" ;;
    esac

    SUDO=sudo
    [ "$(id -u)" -eq 0 ] && SUDO=
    SYSTEMD_TYPE=${INSTALL_K3S_TYPE:-notify}
    if [ -n "${INSTALL_K3S_BIN_DIR}" ]; then
        BIN_DIR=${INSTALL_K3S_BIN_DIR}
    else
        BIN_DIR=/usr/local/bin
        if ! $SUDO sh -c "touch ${BIN_DIR}/k3s-ro-test && rm -rf ${BIN_DIR}/k3s-ro-test" 2>/dev/null; then
            [ -d /opt/bin ] && BIN_DIR=/opt/bin
        fi
    fi
    SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}
    SERVICE_K3S=${SYSTEM_NAME}.service
    UNINSTALL_K3S_SH=${UNINSTALL_K3S_SH:-${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh}
    KILLALL_K3S_SH=${KILLALL_K3S_SH:-${BIN_DIR}/k3s-killall.sh}
    FILE_K3S_SERVICE=${SYSTEMD_DIR}/${SERVICE_K3S}
    FILE_K3S_ENV=${SYSTEMD_DIR}/${SERVICE_K3S}.env
    # Taken before this run touches anything: the service restarts only if this run changed one of the three.
    PRE_INSTALL_HASHES=$(installed_hashes)
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && INSTALL_K3S_SKIP_DOWNLOAD=true
    INSTALL_K3S_CHANNEL_URL=${INSTALL_K3S_CHANNEL_URL:-'https://update.k3s.io/v1-release/channels'}
    INSTALL_K3S_CHANNEL=${INSTALL_K3S_CHANNEL:-'stable'}
}

# curl first, else wget, as the real script picks its downloader.
pick_downloader() {
    for candidate in curl wget; do
        if [ -x "$(command -v "$candidate" 2>/dev/null)" ]; then
            DOWNLOADER=$candidate
            return
        fi
    done
    fatal 'Can not find curl or wget for downloading files'
}

# download FILE URL; any failure (404, nothing listening, no such host) is the real script's one error line.
download() {
    set +e
    if [ "${DOWNLOADER}" = curl ]; then
        curl -o "$1" -sfL "$2"
    else
        wget -qO "$1" "$2"
    fi
    status=$?
    set -e
    if [ "${status}" -ne 0 ]; then
        case $2 in
            http://10.250.* | https://10.250.*) ;;
            *) echo "provision lab: hosts reach only the lab; $2 is outside it (a k3s mirror: scripts/lab mirror)" >&2 ;;
        esac
        fatal 'Download failed'
    fi
}

# Without INSTALL_K3S_VERSION the channel server names the release: the last path segment of where it redirects.
release_version() {
    if [ -n "${INSTALL_K3S_VERSION}" ]; then
        VERSION_K3S=${INSTALL_K3S_VERSION}
    else
        info "Finding release for channel ${INSTALL_K3S_CHANNEL}"
        channel_url=${INSTALL_K3S_CHANNEL_URL}/${INSTALL_K3S_CHANNEL}
        if [ "${DOWNLOADER}" = curl ]; then
            VERSION_K3S=$(curl -sSL -o /dev/null -w '%{url_effective}' "${channel_url}" | sed -e 's|.*/||')
        else
            VERSION_K3S=$(wget -S -q -O /dev/null "${channel_url}" 2>&1 | grep -i location | sed -e 's|.*/||')
        fi
    fi
    info "Using ${VERSION_K3S} as release"
}

# Hash file, then the binary only if the installed one differs; verified before it replaces anything.
download_and_verify() {
    if [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = true ] || [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = binary ]; then
        info 'Skipping k3s download and verify'
        [ -x "${BIN_DIR}/k3s" ] || fatal "Executable k3s binary not found at ${BIN_DIR}/k3s"
        return
    fi
    arch=$(uname -m)
    case $arch in
        amd64 | x86_64) ARCH=amd64 SUFFIX= ;;
        arm64 | aarch64) ARCH=arm64 SUFFIX=-arm64 ;;
        s390x) ARCH=s390x SUFFIX=-s390x ;;
        arm*) ARCH=arm SUFFIX=-armhf ;;
        *) fatal "Unsupported architecture $arch" ;;
    esac
    pick_downloader
    TMP_DIR=$(mktemp -d -t k3s-install.XXXXXXXXXX)
    trap 'status=$?; set +e; trap - EXIT; rm -rf "${TMP_DIR}"; exit $status' INT EXIT
    release_version

    hash_url=${GITHUB_URL}/download/${VERSION_K3S}/sha256sum-${ARCH}.txt
    info "Downloading hash ${hash_url}"
    download "${TMP_DIR}/k3s.hash" "${hash_url}"
    HASH_EXPECTED=$(grep " k3s${SUFFIX}\$" "${TMP_DIR}/k3s.hash" || true)
    HASH_EXPECTED=${HASH_EXPECTED%%[[:blank:]]*}
    if [ -x "${BIN_DIR}/k3s" ]; then
        HASH_INSTALLED=$(sha256sum "${BIN_DIR}/k3s")
        if [ "${HASH_INSTALLED%%[[:blank:]]*}" = "${HASH_EXPECTED}" ]; then
            info 'Skipping binary downloaded, installed k3s matches hash'
            return
        fi
    fi

    bin_url=${GITHUB_URL}/download/${VERSION_K3S}/k3s${SUFFIX}
    info "Downloading binary ${bin_url}"
    download "${TMP_DIR}/k3s.bin" "${bin_url}"
    info 'Verifying binary download'
    HASH_BIN=$(sha256sum "${TMP_DIR}/k3s.bin")
    HASH_BIN=${HASH_BIN%%[[:blank:]]*}
    [ "${HASH_BIN}" = "${HASH_EXPECTED}" ] || fatal "Download sha256 does not match ${HASH_EXPECTED}, got ${HASH_BIN}"
    chmod 755 "${TMP_DIR}/k3s.bin"
    info "Installing k3s to ${BIN_DIR}/k3s"
    $SUDO chown root:root "${TMP_DIR}/k3s.bin"
    $SUDO mv -f "${TMP_DIR}/k3s.bin" "${BIN_DIR}/k3s"
}

setup_selinux() {
    if [ "${INSTALL_K3S_SKIP_SELINUX_RPM}" = true ] || [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = true ] ||
        [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = selinux ] || [ ! -d /usr/share/selinux ]; then
        info 'Skipping installation of SELinux RPM'
        return
    fi
    warn 'SELinux policy packages cannot be installed in the provision lab; skipping'
}

create_symlinks() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    [ "${INSTALL_K3S_SYMLINK}" = skip ] && return
    for cmd in kubectl crictl ctr; do
        if [ ! -e "${BIN_DIR}/${cmd}" ] || [ "${INSTALL_K3S_SYMLINK}" = force ]; then
            which_cmd=$(command -v "${cmd}" 2>/dev/null || true)
            if [ -z "${which_cmd}" ] || [ "${INSTALL_K3S_SYMLINK}" = force ]; then
                info "Creating ${BIN_DIR}/${cmd} symlink to k3s"
                $SUDO ln -sf k3s "${BIN_DIR}/${cmd}"
            else
                info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, command exists in PATH at ${which_cmd}"
            fi
        else
            info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, already exists"
        fi
    done
}

create_killall() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    info "Creating killall script ${KILLALL_K3S_SH}"
    $SUDO tee "${KILLALL_K3S_SH}" >/dev/null <<'EOF'
#!/bin/sh
# Stops every k3s service and whatever k3s left behind (provision lab: no containers, CNI or mounts to clean).
[ $(id -u) -eq 0 ] || exec sudo --preserve-env=K3S_DATA_DIR $0 $@
set -x
for service in /etc/systemd/system/k3s*.service; do
    [ -s $service ] && systemctl stop $(basename $service)
done
for pid in $(pgrep -f '^(/usr/bin/python3 )?(/[^ ]*/)?k3s (server|agent)' 2>/dev/null); do
    kill -9 $pid 2>/dev/null
done
rm -rf /run/k3s /run/flannel /var/lib/cni/
EOF
    $SUDO chmod 755 "${KILLALL_K3S_SH}"
    $SUDO chown root:root "${KILLALL_K3S_SH}"
}

create_uninstall() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    info "Creating uninstall script ${UNINSTALL_K3S_SH}"
    $SUDO tee "${UNINSTALL_K3S_SH}" >/dev/null <<EOF
#!/bin/sh
# Removes what the k3s install script installed for ${SYSTEM_NAME}, then k3s itself if no other k3s service is left.
set -x
[ \$(id -u) -eq 0 ] || exec sudo --preserve-env=K3S_DATA_DIR \$0 \$@
K3S_DATA_DIR=\${K3S_DATA_DIR:-/var/lib/rancher/k3s}

${KILLALL_K3S_SH}

if command -v systemctl; then
    systemctl disable ${SYSTEM_NAME}
    systemctl reset-failed ${SYSTEM_NAME}
    systemctl daemon-reload
fi

rm -f ${FILE_K3S_SERVICE}
rm -f ${FILE_K3S_ENV}

remove_uninstall() {
    rm -f ${UNINSTALL_K3S_SH}
}
trap remove_uninstall EXIT

if (ls ${SYSTEMD_DIR}/k3s*.service || ls /etc/init.d/k3s*) >/dev/null 2>&1; then
    set +x; echo 'Additional k3s services installed, skipping uninstall of k3s'; set -x
    exit
fi

for cmd in kubectl crictl ctr; do
    if [ -L ${BIN_DIR}/\$cmd ]; then
        rm -f ${BIN_DIR}/\$cmd
    fi
done

rm -rf /etc/rancher/k3s
rm -rf /run/k3s
rm -rf /run/flannel
rm -rf \${K3S_DATA_DIR}
rm -rf /var/lib/kubelet
rm -f ${BIN_DIR}/k3s
rm -f ${KILLALL_K3S_SH}
EOF
    $SUDO chmod 755 "${UNINSTALL_K3S_SH}"
    $SUDO chown root:root "${UNINSTALL_K3S_SH}"
}

systemd_disable() {
    $SUDO systemctl disable "${SYSTEM_NAME}" >/dev/null 2>&1 || true
    $SUDO rm -f "/etc/systemd/system/${SERVICE_K3S}" || true
    $SUDO rm -f "/etc/systemd/system/${SERVICE_K3S}.env" || true
}

# Mode 0600 before any secret lands in it; values keep the shell's quoting (K3S_TOKEN='...').
create_env_file() {
    info "env: Creating environment file ${FILE_K3S_ENV}"
    $SUDO touch "${FILE_K3S_ENV}"
    $SUDO chmod 0600 "${FILE_K3S_ENV}"
    sh -c export | sed -n -e 's/^export //' -e '/^\(K3S\|CONTAINERD\)_/p' | $SUDO tee "${FILE_K3S_ENV}" >/dev/null
    sh -c export | sed -n -e 's/^export //' -e '/^\([Nn][Oo]\|[Hh][Tt][Tt][Pp]\|[Hh][Tt][Tt][Pp][Ss]\)_[Pp][Rr][Oo][Xx][Yy]=/p' |
        $SUDO tee -a "${FILE_K3S_ENV}" >/dev/null
}

create_service_file() {
    info "systemd: Creating service file ${FILE_K3S_SERVICE}"
    $SUDO tee "${FILE_K3S_SERVICE}" >/dev/null <<EOF
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=${SYSTEMD_TYPE}
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${FILE_K3S_ENV}
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BIN_DIR}/k3s \\
    ${CMD_K3S_EXEC}

EOF
}

has_working_xtables() {
    if $SUDO sh -c "command -v \"$1-save\"" >/dev/null && $SUDO sh -c "command -v \"$1-restore\"" >/dev/null; then
        if $SUDO "$1-save" 2>/dev/null | grep -q '^-A CNI-HOSTPORT-MASQ -j MASQUERADE$'; then
            warn "Host $1-save/$1-restore tools are incompatible with existing rules"
        else
            return 0
        fi
    else
        info "Host $1-save/$1-restore tools not found"
    fi
    return 1
}

memory_cgroup_present() {
    grep -qs memory /sys/fs/cgroup/cgroup.controllers && return 0
    [ "$(grep -s '^memory' /proc/cgroups | while read -r _ _ _ enabled; do echo "$enabled"; done)" = 1 ]
}

service_enable_and_start() {
    if ! memory_cgroup_present; then
        info 'Failed to find memory cgroup, you may need to add "cgroup_memory=1 cgroup_enable=memory" to your linux cmdline (/boot/cmdline.txt on a Raspberry Pi)'
    fi
    [ "${INSTALL_K3S_SKIP_ENABLE}" = true ] && return

    info "systemd: Enabling ${SYSTEM_NAME} unit"
    $SUDO systemctl enable "${FILE_K3S_SERVICE}" >/dev/null
    $SUDO systemctl daemon-reload >/dev/null

    [ "${INSTALL_K3S_SKIP_START}" = true ] && return

    POST_INSTALL_HASHES=$(installed_hashes)
    if [ "${PRE_INSTALL_HASHES}" = "${POST_INSTALL_HASHES}" ] && [ "${INSTALL_K3S_FORCE_RESTART}" != true ]; then
        info 'No change detected so skipping service start'
        return
    fi

    for XTABLES in iptables ip6tables; do
        if has_working_xtables ${XTABLES}; then
            $SUDO ${XTABLES}-save 2>/dev/null | grep -v KUBE- | grep -iv flannel | $SUDO ${XTABLES}-restore
        fi
    done

    info "systemd: Starting ${SYSTEM_NAME}"
    $SUDO systemctl restart "${SYSTEM_NAME}"
}

{
    find_supervisor
    setup_env "$@"
    download_and_verify
    setup_selinux
    create_symlinks
    create_killall
    create_uninstall
    systemd_disable
    create_env_file
    create_service_file
    service_enable_and_start
}
