#!/bin/sh
# A container-job script (the SCAR / OSCAR contract): reads $INPUT_FILE_PATH, writes what it
# produces to $TMP_OUTPUT_DIR; watcher uploads that to the route's output under $REQUEST_ID/.
set -eu
name="$(basename "$INPUT_FILE_PATH")"
{
  echo "source: s3://$STORAGE_BUCKET/$STORAGE_OBJECT_KEY"
  echo "lines: $(wc -l < "$INPUT_FILE_PATH" | tr -d ' ')"
  echo "bytes: $(wc -c < "$INPUT_FILE_PATH" | tr -d ' ')"
  echo "sha256: $(sha256sum < "$INPUT_FILE_PATH" | cut -d' ' -f1)"
} > "$TMP_OUTPUT_DIR/$name.stats.txt"
echo "wrote $name.stats.txt"
