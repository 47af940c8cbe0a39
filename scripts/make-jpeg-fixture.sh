#!/usr/bin/env bash
# test/fixtures/jpeg: JPEGs written by libjpeg-turbo (Debian's libjpeg-turbo-progs) that jpeg-js's own
# encoder cannot make: a progressive colour JPEG and a one-component (gray) JPEG, each with libjpeg's
# decoding of it (djpeg, .ppm/.pgm) for test/native/webdataset.test.ts to compare against. The colour
# reference is decoded with -nosmooth: jpeg-js upsamples 4:2:0 chroma by replication, not by libjpeg's
# default triangle ("fancy") filter.
set -euo pipefail
cd "$(dirname "$0")/../test/fixtures/jpeg"
w=37; h=29
{ printf 'P6\n%d %d\n255\n' $w $h
  for ((y = 0; y < h; y++)); do for ((x = 0; x < w; x++)); do
    printf "\\x$(printf %02x $(( (x * 7 + y * 3) % 256 )))\\x$(printf %02x $(( (x * x + y * 11) % 256 )))\\x$(printf %02x $(( 255 - (x * 5 + y * 5) % 256 )))"
  done; done; } > source.ppm
cjpeg -quality 90 -progressive source.ppm > progressive.jpg
cjpeg -quality 90 -grayscale source.ppm > gray.jpg
djpeg -nosmooth -dct float -ppm progressive.jpg > progressive.ppm
djpeg -dct float -pnm gray.jpg > gray.pgm
rm source.ppm
ls -l
