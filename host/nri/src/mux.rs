//! The NRI multiplexer: several logical connections over one unix stream socket.
//!
//! Each trunk frame is an 8-byte big-endian header — logical connection id `u32`, payload length
//! `u32` — followed by the payload. There is no open or close signalling; id 0 is reserved.
//! Connection 1 carries the `Plugin` service (bulkhead serves), connection 2 the `Runtime`
//! service (containerd serves).
//!
//! containerd's reader fails when a frame carries more than 4096 payload bytes (and then silently
//! stops answering), so every outgoing byte stream is cut into frames of at most
//! [`MAX_OUTGOING_PAYLOAD`]. Incoming frames can be larger and are accepted up to
//! [`MAX_INCOMING_PAYLOAD`].

use tokio::io::{AsyncRead, AsyncReadExt};

use super::NriError;
use super::ttrpc;

/// Length of a mux frame header.
pub const HEADER_LEN: usize = 8;
/// Largest payload bulkhead ever puts in one outgoing frame.
pub const MAX_OUTGOING_PAYLOAD: usize = 4096;
/// Largest incoming frame payload accepted: one whole ttrpc message.
pub const MAX_INCOMING_PAYLOAD: usize = ttrpc::HEADER_LEN + ttrpc::MAX_PAYLOAD_LEN;

/// Logical connection carrying the `Plugin` service (containerd calls bulkhead).
pub const PLUGIN_CONNECTION: u32 = 1;
/// Logical connection carrying the `Runtime` service (bulkhead calls containerd).
pub const RUNTIME_CONNECTION: u32 = 2;

/// Cuts `data` into mux frames for connection `connection`, each payload at most
/// [`MAX_OUTGOING_PAYLOAD`] bytes, and returns them concatenated, ready to write.
pub fn encode_frames(connection: u32, data: &[u8]) -> Vec<u8> {
    let frames = data.len().div_ceil(MAX_OUTGOING_PAYLOAD);
    let mut out = Vec::with_capacity(data.len() + frames * HEADER_LEN);
    for chunk in data.chunks(MAX_OUTGOING_PAYLOAD) {
        out.extend_from_slice(&connection.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Reads one frame: `Ok(None)` on a clean end of stream at a frame boundary.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<(u32, Vec<u8>)>, NriError> {
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(NriError::Io(e)),
    }
    let connection = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if length > MAX_INCOMING_PAYLOAD {
        return Err(NriError::FrameTooLarge { connection, length });
    }
    let mut payload = vec![0u8; length];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|_| NriError::TruncatedFrame { connection, length })?;
    Ok(Some((connection, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mut bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let connection = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
            let length = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
            frames.push((connection, bytes[8..8 + length].to_vec()));
            bytes = &bytes[8 + length..];
        }
        frames
    }

    #[test]
    fn small_message_is_one_frame() {
        let frames = split(&encode_frames(2, b"hello"));
        assert_eq!(frames, [(2, b"hello".to_vec())]);
    }

    #[test]
    fn never_more_than_4096_payload_bytes_per_frame() {
        let data: Vec<u8> = (0..13_000u32).map(|i| i as u8).collect();
        let frames = split(&encode_frames(1, &data));
        assert_eq!(
            frames.iter().map(|(_, p)| p.len()).collect::<Vec<_>>(),
            [4096, 4096, 4096, 712]
        );
        assert!(frames.iter().all(|(c, _)| *c == 1));
        let joined: Vec<u8> = frames.into_iter().flat_map(|(_, p)| p).collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn exactly_4096_bytes_is_one_frame_and_4097_is_two() {
        assert_eq!(split(&encode_frames(1, &[7; 4096])).len(), 1);
        let frames = split(&encode_frames(1, &[7; 4097]));
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].1.len(), 1);
    }

    #[test]
    fn header_is_connection_then_length_big_endian() {
        assert_eq!(
            encode_frames(0x0A0B_0C0D, b"x"),
            [0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 0, 1, b'x']
        );
    }

    #[tokio::test]
    async fn reads_frames_larger_than_4096() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&9218u32.to_be_bytes());
        bytes.extend(std::iter::repeat_n(5u8, 9218));
        let mut reader = bytes.as_slice();
        let (connection, payload) = read_frame(&mut reader).await.unwrap().unwrap();
        assert_eq!((connection, payload.len()), (1, 9218));
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_not_a_hang() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&100u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 10]);
        let mut reader = bytes.as_slice();
        assert!(matches!(
            read_frame(&mut reader).await,
            Err(NriError::TruncatedFrame {
                connection: 1,
                length: 100
            })
        ));
    }

    #[tokio::test]
    async fn oversized_frame_is_rejected_before_allocating() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut reader = bytes.as_slice();
        assert!(matches!(
            read_frame(&mut reader).await,
            Err(NriError::FrameTooLarge { .. })
        ));
    }
}
