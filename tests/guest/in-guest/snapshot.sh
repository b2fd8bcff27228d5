# In-guest half of tests/guest/snapshot.sh: one 4 KiB-block disk served with a snapshot.
# Environment: DISK_BYTES OFFSET_BLOCKS.
if wait_for 30 have_usb_block sd; then
    ok enumerate
else
    fail enumerate "no disk"
    finish
fi
d=$(usb_block_devices sd)
expect_eq logical-block-size "$(cat /sys/block/$d/queue/logical_block_size)" 4096
expect_eq size "$(($(cat /sys/block/$d/size) * 512))" "$DISK_BYTES"
expect_eq writable "$(cat /sys/block/$d/ro)" 0
info "$(sg_readcap --16 /dev/$d 2>&1 | grep -iE 'logical block length|last lba' | tr -s ' \n' ' ')"
head -c $((4 << 20)) /dev/urandom >/tmp/data
want=$(md5sum </tmp/data | cut -d' ' -f1)
value written_md5 "$want"
check write dd if=/tmp/data of=/dev/$d bs=4096 seek="$OFFSET_BLOCKS" conv=fsync
echo 3 >/proc/sys/vm/drop_caches
expect_eq read-back "$(dd if=/dev/$d bs=4096 skip="$OFFSET_BLOCKS" count=1024 2>/dev/null | md5sum | cut -d' ' -f1)" "$want"
# A 512-byte aligned but not 4 KiB aligned O_DIRECT read must be refused by the kernel,
# proving the 4 KiB logical block size is real, not just reported.
if dd if=/dev/$d of=/dev/null bs=512 count=1 iflag=direct 2>/dev/null; then
    info "512-byte O_DIRECT read accepted (dd may not support iflag=direct here)"
fi
finish
