# Shared by the image scripts in this folder (sourced, not run: `make images`
# and scripts/deps.sh run only *.sh). Each image is FROM scratch: a Debian
# binary or release, the shared libraries ldd lists for it, a config.

# image_current IMAGE RECIPE: exits the script (0) when there is no Docker
# engine, or when IMAGE exists built by this RECIPE (FORCE=1 rebuilds).
image_current() {
	if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
		echo "images: no Docker engine; skipping $1" >&2
		exit 0
	fi
	if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f '{{index .Config.Labels "org.mqttfleet.recipe"}}' "$1" 2>/dev/null)" = "$2" ]; then
		exit 0
	fi
}

# copy_libs ROOT FILE...: copies every shared library ldd lists for FILEs
# (and the loader) to the same path under ROOT.
copy_libs() {
	local root=$1
	shift
	for f in "$@"; do
		ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}'
	done | sort -u | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# build_image IMAGE RECIPE VERSION CONTEXT: docker build with the version
# and recipe labels; prints the build's output only when it fails.
build_image() {
	local out
	if ! out="$(docker build -q --label "org.opencontainers.image.version=${3:-unknown}" --label "org.mqttfleet.recipe=$2" -t "$1" "$4" 2>&1)"; then
		echo "$out" >&2
		return 1
	fi
}
