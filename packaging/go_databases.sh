#!/usr/bin/env bash
# Put Bioconductor's GO databases (org.Hs.eg.sqlite, GO.sqlite) into the folder $1, from the Debian packages
# r-bioc-org.hs.eg.db and r-bioc-go.db: `apt-get download` (no root, no R, nothing installed system-wide) and
# `dpkg-deb` to unpack the two files. The .deb files are cached in ~/.cache/scelmo-desktop/debian so a fresh
# environment does not download them again. Says why when it cannot (not Debian/Ubuntu, no network), and
# exits 0 either way: the app then uses blitzgsea's GO names.
set -uo pipefail
target="${1:?usage: go_databases.sh TARGET_FOLDER}"
if [ -f "$target/org.Hs.eg.sqlite" ] && [ -f "$target/GO.sqlite" ]; then
  echo "GO databases: present in $target"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  echo "GO databases: not installed (they come from Debian/Ubuntu packages and this system has no apt-get);" \
       "gene sheets use blitzgsea's GO process names, without definitions or molecular functions"
  exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/scelmo-desktop/debian"
mkdir -p "$cache" "$target"
for package in r-bioc-org.hs.eg.db r-bioc-go.db; do
  if ! ls "$cache"/"${package}"_*.deb >/dev/null 2>&1; then
    if ! (cd "$cache" && apt-get download "$package" >/dev/null 2>&1); then
      echo "GO databases: not installed ('apt-get download $package' failed: no Debian mirror reachable, or the" \
           "package lists need 'apt-get update'); gene sheets use blitzgsea's GO process names"
      exit 0
    fi
  fi
done
unpack() {  # $1 package, $2 file name inside it
  deb=$(ls "$cache"/"$1"_*.deb | tail -n 1)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -O --wildcards "*/extdata/$2" > "$target/$2.part" && mv "$target/$2.part" "$target/$2"
  echo "$1 $(dpkg-deb -f "$deb" Version)" >> "$target/VERSIONS.part"
}
rm -f "$target/VERSIONS.part"
if unpack r-bioc-org.hs.eg.db org.Hs.eg.sqlite && unpack r-bioc-go.db GO.sqlite; then
  mv "$target/VERSIONS.part" "$target/VERSIONS"
  echo "GO databases: installed in $target ($(tr '\n' ' ' < "$target/VERSIONS"))"
else
  rm -f "$target"/*.part
  echo "GO databases: not installed (unpacking the Debian packages failed); gene sheets use blitzgsea's GO names"
fi
exit 0
