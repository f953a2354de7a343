//! A faithful local emulator of both video APIs, rendering real placeholder MP4s.

pub mod video;
