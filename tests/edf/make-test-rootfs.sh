#!/bin/sh
# Builds a minimal root file system for the runtime tests in $1: the host's sh and a few
# coreutils with the libraries they need, and the image metadata enroot writes (/etc/environment,
# /etc/rc with a working directory and an entrypoint that exports a variable).
set -eu
root=$1
mkdir -p "$root/bin" "$root/etc" "$root/workspace" "$root/data" "$root/usr/local/bin"
copy() {
  src=
  for d in /usr/bin /bin /usr/sbin /sbin; do
    if [ -x "$d/$1" ]; then src=$d/$1; break; fi
  done
  [ -n "$src" ] || { echo "make-test-rootfs: $1 not found" >&2; exit 1; }
  cp -L "$src" "$root/bin/$1"
  ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
}
for p in sh cat env pwd ls touch id sleep grep mkdir stat readlink true false; do copy "$p"; done
echo "hello from the image" > "$root/hello.txt"
echo "image data" > "$root/data/in-image.txt"
ln -s /etc "$root/escape"
printf 'FROM_IMAGE=image\nSHARED=image\nPATH=/usr/local/bin:/bin\nSLURM_PROCID=999\n' > "$root/etc/environment"
cat > "$root/usr/local/bin/entrypoint.sh" <<'EOS'
#!/bin/sh
export EP_VAR=from-entrypoint
exec "$@"
EOS
chmod 755 "$root/usr/local/bin/entrypoint.sh"
cat > "$root/etc/rc" <<'EOS'
mkdir -p "/workspace" 2> /dev/null
cd "/workspace" && unset OLDPWD || exit 1

if [ $# -gt 0 ]; then
    exec '/usr/local/bin/entrypoint.sh' "$@"
else
    exec '/usr/local/bin/entrypoint.sh' '/bin/sh'
fi
EOS
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
