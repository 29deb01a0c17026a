import NIOCore
import NIOHTTP2

/// Ends an HTTP/2 stream on its last frame. The HTTP codec writes an answer's end as an empty DATA
/// frame of its own, after the body or after a bodiless head; a provider may end the stream on
/// the body's frame, or on the HEADERS frame of an answer without a body, and its clients count on
/// it (an SDK that parses every DATA frame as one whole JSON document fails on an empty one). So the
/// last HEADERS or DATA frame is held until the next write: an empty end frame is folded into it,
/// anything else — or a flush, or a close — sends it as it was. One frame less per answer, too.
final class EndStreamOnLastData: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var held: (frame: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?)?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        if let (last, lastPromise) = held, Self.isEmptyEnd(payload), let ended = Self.ending(last) {
            held = nil
            if let promise { lastPromise?.futureResult.cascade(to: promise) }
            context.write(wrapOutboundOut(ended), promise: lastPromise ?? promise)
            return
        }
        release(context: context)
        if Self.ending(payload) != nil {
            held = (payload, promise)
        } else {
            context.write(data, promise: promise)
        }
    }

    func flush(context: ChannelHandlerContext) {
        release(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        release(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release(context: context)
    }

    private func release(context: ChannelHandlerContext) {
        guard let (frame, promise) = held else { return }
        held = nil
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    /// An empty DATA frame that ends the stream (what the codec writes for an answer's end).
    private static func isEmptyEnd(_ payload: HTTP2Frame.FramePayload) -> Bool {
        guard case .data(let frame) = payload, frame.endStream, frame.paddingBytes == nil,
              case .byteBuffer(let bytes) = frame.data else { return false }
        return bytes.readableBytes == 0
    }

    /// `payload` ending the stream, if it is a HEADERS or DATA frame that does not yet.
    private static func ending(_ payload: HTTP2Frame.FramePayload) -> HTTP2Frame.FramePayload? {
        switch payload {
        case .headers(var frame) where !frame.endStream:
            frame.endStream = true
            return .headers(frame)
        case .data(var frame) where !frame.endStream:
            frame.endStream = true
            return .data(frame)
        default:
            return nil
        }
    }
}
