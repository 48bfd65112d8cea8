#!/bin/sh
# Bakes one user into an image at build time (seed 002: "User/group setup happens at image build time", so a
# container starts instantly with no `docker run` + `docker commit` round trip).
#
# Usage (as root, from images/per-user/Dockerfile):  setup-user.sh USER_NAME USER_UID USER_GID ENABLE_SUDO
#
# Works on UBI9/RHEL (shadow-utils) and Debian/Ubuntu (passwd), including a `debootstrap --variant=minbase`
# rootfs, with no network unless ENABLE_SUDO=true has to install sudo.
#
# When the base already has the uid or gid (ubuntu:24.04 ships `ubuntu` 1000:1000, Jupyter's docker-stacks
# `jovyan` 1000 in group `users` 100, ODH's images `default` 1001 in group `root` 0):
#   - an existing GROUP with USER_GID is reused under its own name, because it is usually shared (users, root) and
#     renaming it would change the meaning of every file the base gave that group. The one exception is the
#     private group of the account being taken over (same name as that account, like ubuntu:ubuntu): it belongs to
#     nobody else, so it is renamed along with the account;
#   - an existing USER with USER_UID is taken over: renamed to USER_NAME and given the new primary group and home,
#     so files the base gave that uid stay the user's. Its old home is left in place, never moved: for service
#     accounts it is often application data (ODH's is /opt/app-root/src).
set -eu

die() {
    printf 'per-user setup: %s\n' "$*" >&2
    exit 1
}

note() {
    printf 'per-user setup: %s\n' "$*"
}

[ "$#" -eq 4 ] || die "expected 4 arguments USER_NAME USER_UID USER_GID ENABLE_SUDO, got $#"
name=$1
uid=$2
gid=$3
sudo=$4

# The stack sanitizes logins before they get here (seed 002, "Username Sanitization"); this is the last guard.
case "$name" in
    '' | *[!a-z0-9_-]* | [!a-z_]*)
        die "USER_NAME='$name' is not a portable login name: use lowercase letters, digits, '_' and '-', starting with a letter or '_'"
        ;;
esac
[ "${#name}" -le 32 ] || die "USER_NAME='$name' is ${#name} characters long; the limit is 32"

for pair in "USER_UID=$uid" "USER_GID=$gid"; do
    value=${pair#*=}
    case "$value" in
        '' | *[!0-9]* | 0?*) die "$pair is not a decimal id without leading zeros" ;;
    esac
    # 4294967295 is (uid_t)-1, which the kernel reserves; more digits than that overflow uid_t.
    if [ "${#value}" -gt 10 ] || [ "$value" -gt 4294967294 ]; then die "$pair is above 4294967294"; fi
done
[ "$uid" -ne 0 ] || die "USER_UID=0 would make the image run as root; use the user's own uid"

case "$sudo" in
    true | false) ;;
    *) die "ENABLE_SUDO='$sudo' must be 'true' or 'false'" ;;
esac

# Installs packages with whichever package manager the base has, clearing its caches in the same step.
install_packages() {
    if command -v dnf >/dev/null 2>&1; then
        dnf install -y --setopt=install_weak_deps=0 "$@" && dnf clean all && rm -rf /var/cache/dnf /var/cache/yum
    elif command -v microdnf >/dev/null 2>&1; then
        microdnf install -y --setopt=install_weak_deps=0 "$@" && microdnf clean all && rm -rf /var/cache/yum
    elif command -v apt-get >/dev/null 2>&1; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" && rm -rf /var/lib/apt/lists/*
    else
        die "need to install $* but the base has none of dnf, microdnf, apt-get"
    fi
}

if ! command -v useradd >/dev/null 2>&1; then
    # ubi9-minimal ships without shadow-utils; every other supported base has it.
    note "useradd missing: installing the distribution's shadow tools (needs network)"
    if command -v apt-get >/dev/null 2>&1; then install_packages passwd; else install_packages shadow-utils; fi
fi

# Reads /etc/passwd and /etc/group directly: the build container has no NSS beyond files anyway, and awk is in
# every supported base (mawk in Debian minbase, gawk in UBI).
field_where() { # FILE MATCH_FIELD VALUE OUT_FIELD -> first matching entry's OUT_FIELD, or nothing
    awk -F: -v k="$2" -v v="$3" -v o="$4" '$k == v { print $o; exit }' "$1"
}

home=/home/$name
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash

user_with_uid=$(field_where /etc/passwd 3 "$uid" 1)
uid_of_name=$(field_where /etc/passwd 1 "$name" 3)

# --- group --------------------------------------------------------------------------------------------------
group_with_gid=$(field_where /etc/group 3 "$gid" 1)
gid_of_name=$(field_where /etc/group 1 "$name" 3)
if [ -n "$group_with_gid" ] && [ "$group_with_gid" != "$name" ] && [ "$group_with_gid" = "$user_with_uid" ] && [ -z "$gid_of_name" ]; then
    note "renaming the private group '$group_with_gid' (gid $gid) of the account taken over below to '$name'"
    groupmod -n "$name" "$group_with_gid"
elif [ -n "$group_with_gid" ]; then
    note "reusing the base's group '$group_with_gid' (gid $gid)"
elif [ -n "$gid_of_name" ]; then
    note "moving the base's group '$name' from gid $gid_of_name to gid $gid"
    groupmod -g "$gid" "$name"
else
    groupadd -g "$gid" "$name"
fi

# --- user ---------------------------------------------------------------------------------------------------
if [ -n "$user_with_uid" ] && [ "$user_with_uid" != "$name" ]; then
    [ -z "$uid_of_name" ] || die "uid $uid belongs to '$user_with_uid' and a user '$name' already exists with uid $uid_of_name: pick another USER_UID or USER_NAME"
    note "taking over the base's user '$user_with_uid' (uid $uid) as '$name'"
    usermod -l "$name" -g "$gid" -d "$home" -s "$shell" "$user_with_uid"
elif [ -n "$uid_of_name" ]; then
    if [ "$uid_of_name" != "$uid" ]; then
        note "moving the base's user '$name' from uid $uid_of_name to uid $uid"
        usermod -u "$uid" "$name"
    fi
    usermod -g "$gid" -d "$home" -s "$shell" "$name"
else
    # --no-log-init: without it useradd writes this uid's slot in the sparse /var/log/lastlog and faillog, which
    # for uids like 1722830498 (seed 002's example) becomes a file hundreds of GB long in the image layer.
    useradd --no-log-init -u "$uid" -g "$gid" -d "$home" -M -s "$shell" "$name"
fi

# --- home ---------------------------------------------------------------------------------------------------
# ~/.local/bin is where `pip install --user` puts scripts (seed 002, "Home directory with .local/bin").
if [ ! -d "$home" ]; then
    mkdir -p "$home"
    if [ -d /etc/skel ]; then cp -a /etc/skel/. "$home/"; fi
fi
mkdir -p "$home/.local/bin"
chown -R "$uid:$gid" "$home"
chmod 0750 "$home"

# --- sudo ---------------------------------------------------------------------------------------------------
# Off by default; when off nothing about sudo is installed or configured.
if [ "$sudo" = true ]; then
    command -v sudo >/dev/null 2>&1 || install_packages sudo
    mkdir -p /etc/sudoers.d
    # sudo skips files in sudoers.d whose names contain '.', which a valid USER_NAME cannot.
    rule=/etc/sudoers.d/$name
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$name" >"$rule"
    chmod 0440 "$rule"
    if command -v visudo >/dev/null 2>&1; then visudo -cf "$rule" >/dev/null; fi
    note "passwordless sudo enabled for '$name'"
fi

note "user '$name' uid $uid gid $gid home $home"
