//! Encode times of the placeholder video and stills, for the sizes a storyboard uses.
//!
//! `cargo bench -p shotlist-emulator --bench video` times a release build, `... --bench video
//! --profile dev` a dev build. Prints one line per case; no harness, so it needs no
//! extra dependency. `VIDEO_BENCH_OUT=dir` also writes the files there.

use std::time::Instant;

use shotlist_emulator::video::{
    Slate, render_mp4, render_spritesheet_webp, render_thumbnail_jpeg, render_thumbnail_webp,
};

fn main() {
    // VIDEO_BENCH_CASES="1080x1920x4,480x854x6" replaces the default cases.
    let cases: Vec<(u32, u32, u32)> = match std::env::var("VIDEO_BENCH_CASES") {
        Ok(list) => list
            .split(',')
            .map(|case| {
                let n: Vec<u32> = case.split('x').map(|v| v.parse().expect("WxHxS")).collect();
                (n[0], n[1], n[2])
            })
            .collect(),
        Err(_) => vec![(1920, 1080, 20), (1280, 720, 5), (480, 480, 5)],
    };
    let out = std::env::var_os("VIDEO_BENCH_OUT").map(std::path::PathBuf::from);
    for (width, height, seconds) in cases {
        let slate = Slate {
            prompt: "A paper boat drifts down a rain-soaked street at dusk, neon signs \
                     reflected in the puddles; slow dolly in, shallow depth of field.",
            model: "sora",
            job_id: "task_01JBENCHMARK",
            width,
            height,
            seconds,
            variant: 1,
            variants: 2,
            inset: None,
        };
        let start = Instant::now();
        let mp4 = render_mp4(&slate).expect("mp4");
        let mp4_time = start.elapsed();
        let start = Instant::now();
        let jpeg = render_thumbnail_jpeg(&slate).expect("jpeg");
        let webp = render_thumbnail_webp(&slate).expect("webp");
        let sheet = render_spritesheet_webp(&slate).expect("sprite sheet");
        let stills_time = start.elapsed();
        println!(
            "{width}x{height} {seconds:>2} s: mp4 {:>7.1} ms ({} KiB); jpeg+webp+sheet {:>6.1} ms",
            mp4_time.as_secs_f64() * 1000.0,
            mp4.len() / 1024,
            stills_time.as_secs_f64() * 1000.0,
        );
        if let Some(dir) = &out {
            let name = format!("{width}x{height}x{seconds}");
            std::fs::create_dir_all(dir).expect("output dir");
            std::fs::write(dir.join(format!("{name}.mp4")), &mp4).expect("write");
            std::fs::write(dir.join(format!("{name}.jpg")), &jpeg).expect("write");
            std::fs::write(dir.join(format!("{name}.webp")), &webp).expect("write");
            std::fs::write(dir.join(format!("{name}-sheet.webp")), &sheet).expect("write");
        }
    }
}
