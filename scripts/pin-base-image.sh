#!/usr/bin/env bash
# Pin the Airflow base image of ./Dockerfile by digest: read the digest its tag names now with
# skopeo and write it to .env as AIRFLOW_BASE_DIGEST, which compose passes to the build (the
# build refuses to start without it). Run it once before the first `docker compose build`,
# and again to move to a rebuilt base image, after reading what changed.
#
#   scripts/pin-base-image.sh [--image REFERENCE] [--env-file FILE] [--tls-verify=false] [--print]
#
#   --image       the image to inspect, as skopeo names it; default: the Dockerfile's base,
#                 docker://apache/airflow:<version>-python<version> (also SCOUT_BASE_IMAGE)
#   --env-file    the file to update (its AIRFLOW_BASE_DIGEST line, else a new last line);
#                 default: .env beside the Dockerfile (created 0600 if absent)
#   --tls-verify=false  a plain-HTTP or self-signed registry (a local mirror, the tests)
#   --print       print the digest only, write nothing
#
# The digest is that of what the tag names: for a multi-platform tag, its index, so every
# platform builds from the same pinned set. A value that is not sha256:<64 hex> is refused.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

die() {
  echo "pin-base-image: $*" >&2
  exit 2
}

# The value of option $1 is $2, unless it is missing or another option.
value_of() {
  (($# >= 2)) && [[ "$2" != -* ]] || die "$1 needs a value"
}

image="${SCOUT_BASE_IMAGE:-}"
env_file="$root/.env"
print_only=false
skopeo_args=()
while (($#)); do
  case "$1" in
    --image) value_of "$@"; image="$2"; shift 2 ;;
    --image=*) image="${1#--image=}"; shift ;;
    --env-file) value_of "$@"; env_file="$2"; shift 2 ;;
    --env-file=*) env_file="${1#--env-file=}"; shift ;;
    --tls-verify=false) skopeo_args+=(--tls-verify=false); shift ;;
    --print) print_only=true; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

if [ -z "$image" ]; then
  # The FROM of the first stage, without the digest part: one place names the base image.
  base="$(sed -n 's/^FROM \([^@ ]*\)@.*/\1/p' "$root/Dockerfile" | head -n 1)"
  [ -n "$base" ] || die "cannot find the base image (FROM <image>@...) in $root/Dockerfile"
  image="docker://$base"
fi
case "$image" in
  *://*) ;;
  *) die "--image must name a transport, e.g. docker://$image" ;;
esac
command -v skopeo >/dev/null || die "skopeo is not installed (Debian/Ubuntu: apt-get install skopeo)"

if ! digest="$(skopeo inspect "${skopeo_args[@]}" --format '{{.Digest}}' "$image")"; then
  die "skopeo could not inspect $image (see its message above)"
fi
if ! [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  die "skopeo answered ${digest@Q} for $image, not a sha256 digest"
fi

if $print_only; then
  echo "$digest"
  exit 0
fi

# Replace the line (or add it), keeping the file's other lines and its mode: .env holds secrets.
umask 077
directory="$(dirname "$env_file")"
[ -d "$directory" ] || die "no directory $directory for $env_file"
updated="$(mktemp "$directory/.pin-base-image.XXXXXX")"
trap 'rm -f "$updated"' EXIT
line="AIRFLOW_BASE_DIGEST=$digest"
if [ -f "$env_file" ]; then
  # In place of the first AIRFLOW_BASE_DIGEST line (.env.example has an empty one), else last.
  awk -v line="$line" '
    /^AIRFLOW_BASE_DIGEST=/ { if (!done) print line; done = 1; next }
    { print }
    END { if (!done) print line }
  ' "$env_file" >"$updated"
  chmod --reference="$env_file" "$updated"
else
  echo "$line" >"$updated"
fi
mv "$updated" "$env_file"
trap - EXIT
echo "pin-base-image: $image is $digest; AIRFLOW_BASE_DIGEST written to $env_file"
