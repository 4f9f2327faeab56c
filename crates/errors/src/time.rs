//! Times on the wire: the services keep µs since the Unix epoch (the
//! database clock's unit); messages carry `google.protobuf.Timestamp`.

use prost_types::Timestamp;

use crate::FolioError;

/// µs since the epoch as a Timestamp (before 1970 too: nanos stay 0..1e9).
pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// A caller's Timestamp as µs since the epoch: `INVALID_FIELD` naming
/// `field` for nanos outside 0..1e9 or seconds outside
/// 0001-01-01..9999-12-31 (the range protobuf defines).
pub fn micros(field: &str, timestamp: &Timestamp) -> Result<i64, FolioError> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(0..1_000_000_000).contains(&timestamp.nanos) || !(MIN_SECONDS..=MAX_SECONDS).contains(&timestamp.seconds) {
        return Err(FolioError::invalid_field(field, "is not a valid timestamp"));
    }
    Ok(timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_and_timestamps_round_trip_on_both_sides_of_the_epoch() {
        for value in [0, 1, 999_999, 1_000_000, -1, -1_000_001, 1_700_000_000_123_456] {
            let wire = timestamp(value);
            assert!((0..1_000_000_000).contains(&wire.nanos), "{value}: nanos {}", wire.nanos);
            assert_eq!(micros("at", &wire).unwrap(), value);
        }
    }

    #[test]
    fn out_of_range_timestamps_are_the_callers_mistake() {
        for bad in [Timestamp { seconds: 0, nanos: -1 }, Timestamp { seconds: 253_402_300_800, nanos: 0 }] {
            assert!(micros("at", &bad).is_err(), "{bad:?}");
        }
    }
}
