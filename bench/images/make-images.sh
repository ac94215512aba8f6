#!/usr/bin/env bash
# Regenerates the benchmark images (needs ImageMagick 6 `convert` and `cwebp`).
# The outputs are committed: running the benchmark never needs this script.
# Plasma fractals with Gaussian noise, so the files do not compress to nothing;
# fixed seeds, so a rerun with the same tools gives the same pictures.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# picture SEED WxH NOISE -> $tmp/SEED.png (NOISE: attenuation of the noise, 0 = none)
picture() {
  if [ "$3" = 0 ]; then
    convert -seed "$1" -size "$2" plasma:fractal "$tmp/$1.png"
  else
    convert -seed "$1" -size "$2" plasma:fractal -attenuate "$3" +noise Gaussian "$tmp/$1.png"
  fi
}
jpeg() { picture "$1" "$2" "$3" && convert "$tmp/$1.png" -quality "$4" ${5:+-interlace "$5"} "$6"; }
png() { picture "$1" "$2" "$3" && convert "$tmp/$1.png" -strip -depth 8 "$4"; }
webp() { picture "$1" "$2" "$3" && cwebp -quiet -q "$4" "$tmp/$1.png" -o "$5"; }

rm -f full/* thumb/*
# Store photos, 50 KB to 1.5 MB, mean about 0.5 MB.
jpeg 101 640x480 0.3 80 '' full/01-640x480.jpg
webp 102 800x600 0.5 80 full/02-800x600.webp
jpeg 103 1024x768 0.6 82 '' full/03-1024x768.jpg
png 104 400x300 0.3 full/04-400x300.png
jpeg 105 1280x960 0.8 85 '' full/05-1280x960.jpg
jpeg 106 1600x1200 1 85 Plane full/06-1600x1200-progressive.jpg
png 107 640x480 0.5 full/07-640x480.png
jpeg 108 2048x1536 1 80 '' full/08-2048x1536.jpg
webp 109 2592x1944 0.6 80 full/09-2592x1944.webp
# Thumbnails, a few KB: for the workloads where the network must not be the story.
jpeg 201 160x120 0.2 75 '' thumb/01-160x120.jpg
png 202 96x72 0 thumb/02-96x72.png
webp 203 200x150 0.2 70 thumb/03-200x150.webp
