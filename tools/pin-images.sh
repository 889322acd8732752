#!/usr/bin/env bash
# Pin the Dockerfile's base image to the digest its tag points at today.
#
#   tools/pin-images.sh            resolve python:3.11-slim-bookworm and rewrite the ARG PYTHON_IMAGE line
#
# The digest is the multi-platform index digest (`docker buildx imagetools inspect`), so the pin holds for
# every platform the tag serves. Review the diff and commit it: a base-image change is a code change.
# Exit codes: 0 pinned (or already current), 2 no docker buildx (nothing changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERFILE="$ROOT/Dockerfile"
line="$(grep -E '^ARG PYTHON_IMAGE=' "$DOCKERFILE")"
image="${line#ARG PYTHON_IMAGE=}"
tag="${image%@sha256:*}"
if ! docker buildx version >/dev/null 2>&1; then
  echo "pin-images: docker buildx is not available" >&2
  echo "pin-images: fix: run this where Docker (with buildx) can reach the registry" >&2
  exit 2
fi
digest="$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-images: unexpected digest '$digest' for $tag" >&2; exit 2; }
sed -i "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$tag@$digest|" "$DOCKERFILE"
echo "pin-images: $tag@$digest"
