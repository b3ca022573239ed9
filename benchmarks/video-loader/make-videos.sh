#!/usr/bin/env bash
# Test material for the video loader benchmark: 8 ten-second 854x480 30 fps clips with audio (testsrc2, a
# standard ffmpeg test pattern, hue-shifted per clip), each listed 8 times (64 entries per list):
#   h264.txt      H.264 (libx264 defaults: B-frames, a key frame every 250 frames) + AAC, .mp4
#   h264-g60.txt  the same with a key frame every 60 frames (2 s, common for streamed video)
#   mpeg4.txt     MPEG-4 part 2 (q 5, key frame every 12 frames) in AVI
# Usage: benchmarks/video-loader/make-videos.sh DIR
set -euo pipefail
dir=${1:?usage: make-videos.sh DIR}
mkdir -p "$dir"
cd "$dir"
for i in 0 1 2 3 4 5 6 7; do
  src=(-f lavfi -i "testsrc2=size=854x480:rate=30:duration=10" -f lavfi -i "sine=frequency=$((300 + i * 50)):duration=10")
  ffmpeg -v error -y "${src[@]}" -vf "hue=h=$((i * 40))" -c:v libx264 -preset fast -crf 23 -pix_fmt yuv420p -c:a aac -shortest "h264_$i.mp4"
  ffmpeg -v error -y "${src[@]}" -vf "hue=h=$((i * 40))" -c:v libx264 -preset fast -crf 23 -g 60 -pix_fmt yuv420p -c:a aac -shortest "h264-g60_$i.mp4"
  ffmpeg -v error -y "${src[@]}" -vf "hue=h=$((i * 40))" -c:v mpeg4 -q:v 5 -c:a mp2 -shortest "mpeg4_$i.avi"
done
for kind in h264:mp4 h264-g60:mp4 mpeg4:avi; do
  name=${kind%%:*} ext=${kind##*:}
  for r in 0 1 2 3 4 5 6 7; do for i in 0 1 2 3 4 5 6 7; do echo "${name}_$i.$ext $((i % 4))"; done; done > "$name.txt"
done
echo "wrote $dir/h264.txt, $dir/h264-g60.txt, $dir/mpeg4.txt"
