//! The reader against files made by the writer, honest and hostile.

use super::header::{GgufError, parse};
use super::split::{SplitName, split_paths};
use super::write::GgufWriter;
use super::*;

/// A small file with metadata of every type and three tensors of different types.
fn sample() -> GgufWriter {
    let mut writer = GgufWriter::new();
    writer
        .metadata("general.architecture", Value::String("llama".into()))
        .metadata("u8", Value::U8(200))
        .metadata("i8", Value::I8(-5))
        .metadata("u16", Value::U16(65000))
        .metadata("i16", Value::I16(-300))
        .metadata("u32", Value::U32(4_000_000_000))
        .metadata("i32", Value::I32(-70_000))
        .metadata("f32", Value::F32(0.1))
        .metadata("bool", Value::Bool(true))
        .metadata("u64", Value::U64(u64::MAX))
        .metadata("i64", Value::I64(i64::MIN))
        .metadata("f64", Value::F64(-2.5e300))
        .metadata(
            "tokens",
            Value::Array(
                ValueType::String,
                vec![Value::String("<s>".into()), Value::String("▁the".into())],
            ),
        )
        .metadata("empty", Value::Array(ValueType::F32, vec![]))
        .metadata(
            "nested",
            Value::Array(
                ValueType::Array,
                vec![
                    Value::Array(ValueType::I32, vec![Value::I32(1), Value::I32(-2)]),
                    Value::Array(ValueType::U8, vec![]),
                ],
            ),
        )
        .tensor("w.q8", GgmlType::Q8_0, &[3, 64], vec![7; 3 * 2 * 34])
        .tensor("w.f32", GgmlType::F32, &[5], vec![1; 20])
        .tensor("w.q4k", GgmlType::Q4_K, &[2, 256], vec![9; 2 * 144]);
    writer
}

fn message(file: &[u8]) -> String {
    parse(file).unwrap_err().to_string()
}

/// The position just after the name string of tensor `name` in its info (n_dims comes next).
fn info_at(image: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend(name.as_bytes());
    let start = image
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("tensor info");
    start + needle.len()
}

fn put_u64(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn metadata_and_tensors_round_trip() {
    let writer = sample();
    let image = writer.to_bytes();
    let header = parse(&image).expect("valid file");
    assert_eq!(header.version, 3);
    assert_eq!(header.alignment, 32);
    let metadata = &header.metadata;
    assert_eq!(metadata.entries().len(), 15);
    assert_eq!(metadata.get_str("general.architecture"), Some("llama"));
    assert_eq!(metadata.get_u64("u8"), Some(200));
    assert_eq!(metadata.get_i64("i8"), Some(-5));
    assert_eq!(metadata.get_u64("i8"), None);
    assert_eq!(metadata.get_u64("u16"), Some(65000));
    assert_eq!(metadata.get_i64("i16"), Some(-300));
    assert_eq!(metadata.get_u64("u32"), Some(4_000_000_000));
    assert_eq!(metadata.get_i64("i32"), Some(-70_000));
    assert_eq!(metadata.get_f64("f32"), Some(0.1f32 as f64));
    assert_eq!(metadata.get_bool("bool"), Some(true));
    assert_eq!(metadata.get_u64("u64"), Some(u64::MAX));
    assert_eq!(metadata.get_i64("u64"), None);
    assert_eq!(metadata.get_i64("i64"), Some(i64::MIN));
    assert_eq!(metadata.get_f64("f64"), Some(-2.5e300));
    assert_eq!(
        metadata.get_string_array("tokens"),
        Some(vec!["<s>", "▁the"])
    );
    assert_eq!(metadata.get_string_array("nested"), None);
    assert_eq!(metadata.get_str("missing"), None);
    assert_eq!(
        metadata.get("empty"),
        Some(&Value::Array(ValueType::F32, vec![]))
    );
    assert_eq!(
        metadata.get("nested"),
        Some(&Value::Array(
            ValueType::Array,
            vec![
                Value::Array(ValueType::I32, vec![Value::I32(1), Value::I32(-2)]),
                Value::Array(ValueType::U8, vec![]),
            ],
        ))
    );

    let names: Vec<&str> = header.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w.q8", "w.f32", "w.q4k"]);
    let q8 = &header.tensors[0];
    assert_eq!(q8.shape, [3, 64]);
    assert_eq!(q8.ggml_type, GgmlType::Q8_0);
    assert_eq!(q8.bytes.start, header.data_start);
    assert_eq!(q8.bytes.len(), 204);
    assert_eq!(header.data_start % 32, 0);
    // The dimensions are stored reversed: 64 first.
    let at = info_at(&image, "w.q8");
    assert_eq!(&image[at..at + 4], &2u32.to_le_bytes());
    assert_eq!(&image[at + 4..at + 12], &64u64.to_le_bytes());
    for tensor in &header.tensors {
        assert_eq!((tensor.bytes.start - header.data_start) % 32, 0);
    }
    assert!(
        image[header.tensors[1].bytes.clone()]
            .iter()
            .all(|&b| b == 1)
    );
    assert_eq!(header.tensors[2].bytes.end, image.len());
    assert_eq!(header.tensors[2].numel(), 512);
}

#[test]
fn version_2_and_a_custom_alignment_are_read() {
    let mut writer = GgufWriter::new();
    writer
        .version(2)
        .metadata("general.alignment", Value::U32(64))
        .tensor("a", GgmlType::F16, &[3], vec![0; 6])
        .tensor("b", GgmlType::F16, &[3], vec![0; 6]);
    let header = parse(&writer.to_bytes()).expect("valid file");
    assert_eq!((header.version, header.alignment), (2, 64));
    assert_eq!(header.data_start % 64, 0);
    assert_eq!(
        header.tensors[1].bytes.start - header.tensors[0].bytes.start,
        64
    );
}

#[test]
fn every_truncation_is_one_clear_error() {
    let image = sample().to_bytes();
    for len in 0..image.len() {
        let err = parse(&image[..len]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                GgufError::BadMagic { .. }
                    | GgufError::Truncated { .. }
                    | GgufError::CountPastEnd { .. }
                    | GgufError::DataPastEnd { .. }
            ),
            "length {len}: {text}"
        );
    }
}

#[test]
fn no_single_corrupted_byte_panics() {
    // Every byte of the header replaced by a few telling values: the parser answers, Ok or Err.
    let image = sample().to_bytes();
    let header_len = parse(&image).unwrap().data_start;
    for at in 0..header_len {
        for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut broken = image.clone();
            broken[at] = byte;
            let _ = parse(&broken);
        }
    }
}

#[test]
fn counts_and_lengths_past_the_end_are_refused_before_allocating() {
    let image = sample().to_bytes();
    let mut broken = image.clone();
    put_u64(&mut broken, 8, u64::MAX);
    assert!(message(&broken).contains("tensor count: count 18446744073709551615"));
    let mut broken = image.clone();
    put_u64(&mut broken, 16, 1 << 40);
    assert!(message(&broken).contains("metadata count"));
    // The first key's length.
    let mut broken = image.clone();
    put_u64(&mut broken, 24, 1 << 50);
    assert!(
        message(&broken).contains("metadata key 0"),
        "{}",
        message(&broken)
    );
    // The count of the "tokens" array: after its key, the type tag, the element type.
    let at = info_at(&image, "tokens") + 8;
    let mut broken = image.clone();
    put_u64(&mut broken, at, u64::MAX / 4);
    assert!(
        message(&broken).contains("metadata \"tokens\": count"),
        "{}",
        message(&broken)
    );
    // A tensor name's length.
    let at = info_at(&image, "w.f32") - 5 - 8;
    let mut broken = image.clone();
    put_u64(&mut broken, at, u64::MAX);
    assert!(
        message(&broken).contains("name of tensor 1"),
        "{}",
        message(&broken)
    );
}

/// An edit of a file image.
type Patch = Box<dyn Fn(&mut Vec<u8>)>;

#[test]
fn lies_about_tensors_are_refused_naming_the_tensor() {
    let image = sample().to_bytes();
    // Offsets of w.f32: two-dimension-free layout n_dims(4) dim(8) type(4) offset(8).
    let f32_at = info_at(&image, "w.f32");
    let f32_type = f32_at + 4 + 8;
    let f32_offset = f32_type + 4;
    let q8_at = info_at(&image, "w.q8");
    let q8_type = q8_at + 4 + 16;

    let cases: Vec<(Patch, &str)> = vec![
        (
            Box::new(move |b| put_u32(b, f32_type, 99)),
            "tensor \"w.f32\": unknown ggml type 99",
        ),
        (
            Box::new(move |b| put_u32(b, f32_type, 4)),
            "tensor \"w.f32\": unknown ggml type 4",
        ),
        (
            Box::new(move |b| put_u64(b, f32_offset, 1 << 40)),
            "tensor \"w.f32\": data ends at byte",
        ),
        (
            Box::new(move |b| put_u64(b, f32_offset, u64::MAX - 31)),
            "tensor \"w.f32\": data ends at byte 18446744073709551615",
        ),
        (
            Box::new(move |b| put_u64(b, f32_offset, 8)),
            "tensor \"w.f32\": offset 8 is not a multiple of the alignment 32",
        ),
        (
            Box::new(move |b| put_u64(b, f32_offset, 0)),
            "data overlaps that of",
        ),
        (
            Box::new(move |b| put_u32(b, f32_at, 5)),
            "tensor \"w.f32\": 5 dimensions (at most 4)",
        ),
        (
            Box::new(move |b| put_u64(b, f32_at + 4, 1 << 40)),
            "tensor \"w.f32\": data ends at byte",
        ),
        (
            Box::new(move |b| put_u64(b, f32_at + 4, 1 << 62)),
            "tensor \"w.f32\": dimensions [4611686018427387904] overflow",
        ),
        (
            Box::new(move |b| {
                put_u64(b, q8_at + 4, 1 << 40);
                put_u64(b, q8_at + 12, 1 << 40);
            }),
            "tensor \"w.q8\": dimensions [1099511627776, 1099511627776] overflow",
        ),
        (
            // [0, 2^63] holds no bytes, but 2^63 is no signed 64-bit count.
            Box::new(move |b| {
                put_u64(b, q8_at + 4, 0);
                put_u64(b, q8_at + 12, 1 << 63);
            }),
            "tensor \"w.q8\": dimensions [0, 9223372036854775808] overflow",
        ),
        (
            Box::new(move |b| {
                put_u64(b, q8_at + 4, 1 << 32);
                put_u64(b, q8_at + 12, 1 << 31);
            }),
            "tensor \"w.q8\": dimensions [4294967296, 2147483648] overflow",
        ),
        (
            Box::new(move |b| put_u32(b, q8_type, GgmlType::Q4_K.id())),
            "first dimension 64 is not a multiple of Q4_K's block of 256",
        ),
    ];
    for (patch, expected) in cases {
        let mut broken = image.clone();
        patch(&mut broken);
        let text = message(&broken);
        assert!(
            text.contains(expected),
            "expected {expected:?}, got {text:?}"
        );
    }
}

#[test]
fn overlapping_tensors_name_both() {
    let image = sample().to_bytes();
    let header = parse(&image).unwrap();
    // w.q4k starts inside w.q8's data when moved to offset 192 (w.q8 holds 204 bytes from 0).
    let at = info_at(&image, "w.q4k") + 4 + 16 + 4;
    let mut broken = image.clone();
    put_u64(&mut broken, at, 192);
    assert_eq!(
        parse(&broken).unwrap_err(),
        GgufError::Overlap {
            tensor: "w.q4k".into(),
            previous: "w.q8".into()
        }
    );
    assert!(header.tensors.len() == 3);
}

#[test]
fn header_level_lies_are_refused() {
    let image = sample().to_bytes();
    assert!(message(b"GGML\x03\0\0\0").contains("not a GGUF file"));
    assert!(message(b"GG").contains("not a GGUF file"));
    let mut big_endian = image.clone();
    big_endian[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        message(&big_endian),
        "big-endian GGUF (version 3) is not supported; convert it to little-endian"
    );
    let mut old = image.clone();
    put_u32(&mut old, 4, 1);
    assert!(message(&old).contains("GGUF version 1 is not supported"));

    let mut writer = GgufWriter::new();
    writer
        .metadata("a", Value::U8(1))
        .metadata("a", Value::U8(2));
    assert!(message(&writer.to_bytes()).contains("metadata key \"a\" appears twice"));
    let mut writer = GgufWriter::new();
    writer.tensor("t", GgmlType::F32, &[1], vec![0; 4]).tensor(
        "t",
        GgmlType::F32,
        &[1],
        vec![0; 4],
    );
    assert!(message(&writer.to_bytes()).contains("tensor \"t\" appears twice"));
    for alignment in [Value::U32(0), Value::U32(48), Value::U64(32)] {
        let mut writer = GgufWriter::new();
        writer.metadata("general.alignment", alignment);
        assert!(message(&writer.to_bytes()).contains("general.alignment must be"));
    }
    let mut writer = GgufWriter::new();
    writer.metadata("k", Value::U8(1));
    let mut broken = writer.to_bytes();
    put_u32(&mut broken, 24 + 8 + 1, 13);
    assert_eq!(message(&broken), "metadata \"k\": unknown value type 13");

    let mut deep = Value::Array(ValueType::U8, vec![]);
    for _ in 0..10 {
        deep = Value::Array(ValueType::Array, vec![deep]);
    }
    let mut writer = GgufWriter::new();
    writer.metadata("deep", deep);
    assert!(message(&writer.to_bytes()).contains("nested deeper than 8"));

    // Five million one-byte elements fit in the file but not in the element budget.
    let mut writer = GgufWriter::new();
    writer.metadata("big", Value::Array(ValueType::U8, vec![]));
    let mut big = writer.to_bytes();
    let count_at = big.len() - 8;
    put_u64(&mut big, count_at, 5_000_000);
    big.resize(big.len() + 5_000_000, 0);
    assert!(message(&big).contains("\"big\": arrays hold more than 4194304 elements"));

    let mut writer = GgufWriter::new();
    writer.metadata("bad", Value::U8(0));
    let mut broken = writer.to_bytes();
    broken[24 + 8 + 1] = 0xff; // the key's second byte
    assert!(message(&broken).contains("metadata key 0 at byte 24 is not UTF-8"));
}

#[test]
fn non_utf8_string_values_are_kept_lossily() {
    let mut writer = GgufWriter::new();
    writer.metadata("s", Value::String("ab".into()));
    let mut image = writer.to_bytes();
    let at = image.len() - 2;
    image[at] = 0xff;
    let header = parse(&image).unwrap();
    assert_eq!(header.metadata.get_str("s"), Some("\u{fffd}b"));
}

#[test]
fn open_names_the_file_and_keeps_the_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"GGUF\x03\0\0\0").expect("write");
    let err = GgufFile::open(&path).unwrap_err();
    assert_eq!(err.kind(), crate::error::ErrorKind::Input);
    assert!(
        err.message()
            .starts_with(&format!("{}: truncated: tensor count", path.display())),
        "{err}"
    );
    let cause = std::error::Error::source(&err).expect("the parse error");
    assert!(cause.downcast_ref::<GgufError>().is_some());

    let path = dir.path().join("good.gguf");
    std::fs::write(&path, sample().to_bytes()).expect("write");
    let file = GgufFile::open(&path).expect("valid file");
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.tensors().len(), 3);
    assert_eq!(
        file.metadata().get_str("general.architecture"),
        Some("llama")
    );
    let tensor = &file.tensors()[1];
    assert_eq!(file.bytes(tensor.bytes.clone()), &[1; 20]);
    assert_eq!(
        file.map().len(),
        std::fs::metadata(&path).unwrap().len() as usize
    );
}

#[test]
fn split_names_and_siblings() {
    assert_eq!(
        SplitName::parse("qwen-q4_k_m-00002-of-00003.gguf"),
        Some(SplitName {
            prefix: "qwen-q4_k_m".into(),
            index: 2,
            count: 3
        })
    );
    for name in [
        "model.gguf",
        "model-00004-of-00003.gguf",
        "model-0001-of-00003.gguf",
        "-00001-of-00003.gguf",
        "model-00001-of-00003.safetensors",
    ] {
        assert_eq!(SplitName::parse(name), None, "{name}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let part = |index: u64| {
        let mut writer = GgufWriter::new();
        writer
            .metadata("split.no", Value::U16(index as u16))
            .metadata("split.count", Value::U16(2));
        writer.to_bytes()
    };
    let first = dir.path().join("m-00001-of-00002.gguf");
    std::fs::write(&first, part(0)).unwrap();
    let err = split_paths(&first).unwrap_err();
    assert!(
        err.message().contains("split GGUF of 2 files lacks"),
        "{err}"
    );
    assert!(err.message().contains("m-00002-of-00002.gguf"), "{err}");
    let second = dir.path().join("m-00002-of-00002.gguf");
    std::fs::write(&second, part(1)).unwrap();
    assert_eq!(
        split_paths(&second).unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(split::open_split(&first).unwrap().len(), 2);
    std::fs::write(&second, part(0)).unwrap();
    let err = split::open_split(&first).unwrap_err();
    assert!(err.message().contains("the name says part 2 of 2"), "{err}");
    // Alone of 99,999 parts: the error names the first few and counts the rest.
    let alone = dir.path().join("x-00001-of-99999.gguf");
    std::fs::write(&alone, part(0)).unwrap();
    let err = split_paths(&alone).unwrap_err();
    assert!(err.message().len() < 1000, "{} bytes", err.message().len());
    assert!(err.message().contains("x-00002-of-99999.gguf"), "{err}");
    assert!(err.message().contains("and 99993 more"), "{err}");
    let single = dir.path().join("single.gguf");
    assert_eq!(split_paths(&single).unwrap(), [single]);
}
