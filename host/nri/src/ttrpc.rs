//! The ttrpc message framing: a 10-byte header and a protobuf payload.
//!
//! Header layout (big-endian): payload length `u32` (header excluded), stream id `u32`, message
//! type `u8` (1 request, 2 response), flags `u8` (0 for unary calls). The payload of a request is
//! a `ttrpc.Request`, of a response a `ttrpc.Response`. One ttrpc message may arrive split across
//! several mux frames, or several messages in one frame: [`Decoder`] reassembles them from the
//! byte stream of one mux connection.

use bytes::{Buf, Bytes, BytesMut};

use super::NriError;

/// Length of a ttrpc message header.
pub const HEADER_LEN: usize = 10;
/// Largest payload ttrpc allows in one message (4 MiB).
pub const MAX_PAYLOAD_LEN: usize = 4 << 20;
/// Message type of a request.
pub const TYPE_REQUEST: u8 = 1;
/// Message type of a response.
pub const TYPE_RESPONSE: u8 = 2;

/// One ttrpc message, header decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stream the message belongs to; a response carries its request's id.
    pub stream_id: u32,
    /// [`TYPE_REQUEST`], [`TYPE_RESPONSE`], or a type bulkhead does not speak.
    pub kind: u8,
    /// Header flags; 0 for unary calls.
    pub flags: u8,
    /// The encoded `ttrpc.Request` or `ttrpc.Response`.
    pub payload: Bytes,
}

/// Encodes one message: header followed by payload.
pub fn encode(stream_id: u32, kind: u8, payload: &[u8]) -> Result<Vec<u8>, NriError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(NriError::MessageTooLarge {
            length: payload.len(),
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reassembles ttrpc messages from the bytes of one mux connection, in arrival order.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: BytesMut,
}

impl Decoder {
    /// Appends bytes received on the connection.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete message, `None` if more bytes are needed, or an error if the stream
    /// announces a message larger than ttrpc allows (the stream cannot be resynchronized then).
    pub fn next_message(&mut self) -> Result<Option<Message>, NriError> {
        if self.buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = &self.buffer[..HEADER_LEN];
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if length > MAX_PAYLOAD_LEN {
            return Err(NriError::MessageTooLarge { length });
        }
        if self.buffer.len() < HEADER_LEN + length {
            return Ok(None);
        }
        let stream_id = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let kind = header[8];
        let flags = header[9];
        self.buffer.advance(HEADER_LEN);
        let payload = self.buffer.split_to(length).freeze();
        Ok(Some(Message {
            stream_id,
            kind,
            flags,
            payload,
        }))
    }

    /// Bytes received but not yet part of a complete message.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_length_stream_type_flags_big_endian() {
        let bytes = encode(0x0102_0304, TYPE_RESPONSE, b"abc").unwrap();
        assert_eq!(
            bytes,
            [0, 0, 0, 3, 0x01, 0x02, 0x03, 0x04, 2, 0, b'a', b'b', b'c']
        );
    }

    #[test]
    fn empty_payload_is_a_bare_header() {
        let bytes = encode(7, TYPE_RESPONSE, b"").unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 7, 2, 0]);
        let mut decoder = Decoder::default();
        decoder.push(&bytes);
        let message = decoder.next_message().unwrap().unwrap();
        assert_eq!(message.stream_id, 7);
        assert!(message.payload.is_empty());
    }

    #[test]
    fn decodes_a_message_pushed_byte_by_byte() {
        let bytes = encode(3, TYPE_REQUEST, b"payload").unwrap();
        let mut decoder = Decoder::default();
        for (i, byte) in bytes.iter().enumerate() {
            assert_eq!(decoder.next_message().unwrap(), None, "early at byte {i}");
            decoder.push(&[*byte]);
        }
        let message = decoder.next_message().unwrap().unwrap();
        assert_eq!(
            message,
            Message {
                stream_id: 3,
                kind: TYPE_REQUEST,
                flags: 0,
                payload: Bytes::from_static(b"payload"),
            }
        );
        assert_eq!(decoder.pending(), 0);
    }

    #[test]
    fn decodes_several_messages_from_one_push() {
        let mut bytes = encode(1, TYPE_REQUEST, b"one").unwrap();
        bytes.extend(encode(3, TYPE_REQUEST, b"three").unwrap());
        bytes.extend(&encode(5, TYPE_REQUEST, b"five").unwrap()[..4]);
        let mut decoder = Decoder::default();
        decoder.push(&bytes);
        assert_eq!(decoder.next_message().unwrap().unwrap().stream_id, 1);
        assert_eq!(decoder.next_message().unwrap().unwrap().stream_id, 3);
        assert_eq!(decoder.next_message().unwrap(), None);
        assert_eq!(decoder.pending(), 4);
    }

    #[test]
    fn rejects_a_length_over_four_mebibytes() {
        let mut decoder = Decoder::default();
        let length = (MAX_PAYLOAD_LEN as u32 + 1).to_be_bytes();
        decoder.push(&[length[0], length[1], length[2], length[3], 0, 0, 0, 1, 1, 0]);
        assert!(matches!(
            decoder.next_message(),
            Err(NriError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn refuses_to_encode_an_oversized_payload() {
        let payload = vec![0; MAX_PAYLOAD_LEN + 1];
        assert!(encode(1, TYPE_REQUEST, &payload).is_err());
    }
}
