#!/usr/bin/env bash
# Install the Debian packages OneMap needs, only those that are missing (a ready machine: ~0.1 s).
set -euo pipefail
PACKAGES=(
  postgresql-15 postgresql-15-postgis-3 postgis   # the database and PostGIS 3.3
  gdal-bin libgdal32 libgeos-c1v5 libproj25        # GeoDjango's libraries; ogrinfo for tests
  fonts-noto-cjk                                   # Chinese labels, rendered locally
  redis-server                                     # the shared channel layer and tile cache
  chromium                                         # browser tests (Playwright drives Debian's build)
  wrk                                              # bench/tiles.py's HTTP load generator (C, like pgbench)
  postgresql-15-partman                            # daily partitions of the position history (geo/history.py)
  gettext                                          # compilemessages: frontend/locale/*.po -> .mo
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "apt: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "apt: missing packages (${missing[*]}) and no sudo; install them as root" >&2; exit 2; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
