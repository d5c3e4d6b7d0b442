//! The sample types of packed RGB frames: 8-bit (`rgb24`) and 16-bit (`rgb48le`, for inputs of
//! more than 8 bits), read as values in [0, 1].

pub trait Sample: Copy {
    /// The largest value, which is 1.0.
    const FULL_SCALE: f32;
    fn to_unit(self) -> f32;
    /// The nearest sample to `value` (in [0, 1]).
    fn from_unit(value: f32) -> Self;
}

impl Sample for u8 {
    const FULL_SCALE: f32 = 255.0;
    fn to_unit(self) -> f32 {
        self as f32 / <Self as Sample>::FULL_SCALE
    }
    fn from_unit(value: f32) -> Self {
        (value * <Self as Sample>::FULL_SCALE)
            .round()
            .clamp(0.0, <Self as Sample>::FULL_SCALE) as u8
    }
}

impl Sample for u16 {
    const FULL_SCALE: f32 = 65535.0;
    fn to_unit(self) -> f32 {
        self as f32 / <Self as Sample>::FULL_SCALE
    }
    fn from_unit(value: f32) -> Self {
        (value * <Self as Sample>::FULL_SCALE)
            .round()
            .clamp(0.0, <Self as Sample>::FULL_SCALE) as u16
    }
}
