/** Wireshark 4.0 maps bulk endpoints to a class only when told: by VID:PID, then APDUs as ISO 7816. */
export const TSHARK_DECODE_AS = ["-d", "usb.product==0x12090001,usbccid", "-d", "usbccid.subdissector,iso7816"];
