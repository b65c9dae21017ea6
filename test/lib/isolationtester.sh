#!/bin/bash
# test/lib/isolationtester.sh MAJOR - build PostgreSQL's isolation tester
# (pg_isolation_regress, isolationtester) from Debian's source package of
# postgresql-MAJOR and put it where PGXS looks for it.
#
# Run as root inside a Debian chroot by test/lib/chroot.sh.  Debian's
# postgresql-server-dev-13 (bullseye) ships pg_regress but not the isolation
# tester (later majors ship both), so "make installcheck" of the isolation
# specs needs this on PostgreSQL 13.  Only the client side is built: the
# tester speaks libpq to the installed server.
set -euo pipefail
v=$1
dest=/usr/lib/postgresql/$v/lib/pgxs/src/test/isolation
[ -x "$dest/pg_isolation_regress" ] && exit 0
. /etc/os-release
# the source archive is the mirror the chroot was made from (debootstrap
# wrote it as the first "deb" line)
if ! grep -q '^deb-src ' /etc/apt/sources.list; then
	mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)
	echo "deb-src $mirror $VERSION_CODENAME main" >>/etc/apt/sources.list
fi
apt-get -o Acquire::Check-Valid-Until=false -q update
apt-get install -y -q bison flex dpkg-dev
src=$(mktemp -d /tmp/pgsrc.XXXXXX)
cd "$src"
# the source of the installed version
apt-get source -q "postgresql-$v=$(dpkg-query -W -f='${Version}' postgresql-$v)"
cd postgresql-$v-*/
./configure -q --without-readline --without-zlib --without-icu --without-llvm \
	--without-openssl --prefix=/usr/lib/postgresql/$v
make -s -C src/test/isolation
mkdir -p "$dest"
install -m 755 src/test/isolation/pg_isolation_regress src/test/isolation/isolationtester "$dest/"
cd /
rm -rf "$src"
apt-get clean
