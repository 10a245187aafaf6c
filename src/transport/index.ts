export { ChannelError, type ApduChannel, type ChannelErrorCode } from "./channel.ts";
export { InProcessChannel } from "./in-process.ts";
