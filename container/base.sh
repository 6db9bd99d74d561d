#!/bin/sh
# Builds the image the Dockerfile starts FROM, without an image registry:
# a minimal Debian made by debootstrap from Debian's package mirror, imported
# into the local Docker engine under one tag.
#
#   sudo container/base.sh            # tags xmlchat-base:bookworm (once; ~3 min)
#   XMLCHAT_BASE_TAG=... container/base.sh
#
# Needs root (debootstrap), debootstrap and a running Docker engine. Python
# comes from Debian (3.11 on bookworm); xmlchat's own dependencies come from
# PyPI when the Dockerfile is built.
set -eu

TAG="${XMLCHAT_BASE_TAG:-xmlchat-base:bookworm}"
SUITE="${XMLCHAT_BASE_SUITE:-bookworm}"
MIRROR="${XMLCHAT_BASE_MIRROR:-http://deb.debian.org/debian}"

if [ "${XMLCHAT_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG exists (XMLCHAT_BASE_REBUILD=1 to make it again)"
    exit 0
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" "$MIRROR"
# The certificate authorities the host added locally (a company proxy's, say)
# are trusted inside too, so pip reaches PyPI from the build as it does here.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates
fi
# What a container never needs: package lists and caches, documentation.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log
tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/sh"]' \
    - "$TAG"
echo "base image $TAG made from Debian $SUITE"
