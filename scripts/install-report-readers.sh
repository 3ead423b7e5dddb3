#!/bin/sh
# Installs Debian's python3-openpyxl, the independent reader the report tests check workbooks
# with (test/reports.test.ts runs test/fixtures/xlsx_dump.py under /usr/bin/python3: Debian's
# interpreter, not one a version manager puts first on PATH). Does nothing when it is already
# importable, so CI can call it on every run. With --libreoffice it also installs Debian's
# libreoffice-calc-nogui (~285 MB installed, 67 packages), for the test that converts a workbook
# headless (skipped when /usr/bin/soffice is absent); by default it is not installed: openpyxl
# reads the cached values and the formulas, which is what the tests compare with the database.
set -eu

PACKAGES="python3 python3-openpyxl"
if [ "${1:-}" = "--libreoffice" ]; then
  PACKAGES="$PACKAGES libreoffice-calc-nogui"
fi
if /usr/bin/python3 -c 'import openpyxl' >/dev/null 2>&1 && { [ "${1:-}" != "--libreoffice" ] || [ -x /usr/bin/soffice ]; }; then
  echo "python3-openpyxl already installed: $(/usr/bin/python3 -c 'import openpyxl; print(openpyxl.__version__)')"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-report-readers: no apt-get here; install openpyxl for /usr/bin/python3" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
/usr/bin/python3 -c 'import openpyxl; print("openpyxl", openpyxl.__version__)'
