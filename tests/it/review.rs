//! Review and hand-off, checked by tools no one here wrote: Debian's Chromium opens the
//! contact sheet, PyPI's `opentimelineio` reads the exported timeline, ffprobe reads the
//! joined MP4.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, Project};

/// A tool the test suite needs: `bash scripts/test.sh` installs it; a missing one fails
/// the test, never skips it.
fn tool(var: &str, default: &str, install: &str) -> String {
    let tool = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let found = Command::new(&tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is needed by this test: {install} (bash scripts/test.sh does)"
    );
    tool
}

fn chromium() -> String {
    tool(
        "SHOTLIST_TEST_CHROMIUM",
        "chromium",
        "apt-get install chromium",
    )
}

fn shotlist(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shotlist"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SHOTLIST_ENDPOINT")
        .env_remove("AZURE_OPENAI_ENDPOINT")
        .output()
        .unwrap()
}

/// The example storyboard rendered by an emulator, with `ship`'s prompt then edited (so
/// it is stale) and `logbook`'s second take chosen.
async fn rendered_example() -> (Project, shotlist::emulator::Emulator) {
    let project = Project::example();
    let emu = support::emulator(support::emulator_config()).await;
    let out = project.render(&emu, &[]).await;
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    // `render` refreshed the sheet at its end.
    assert!(
        support::text(&out).contains("contact sheet: renders/index.html"),
        "{}",
        support::text(&out)
    );
    assert!(project.path("renders/index.html").is_file());
    let path = project.path("shotlist.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "A small fishing boat fights",
            "A small fishing trawler fights",
        )
        .replace(
            "    variants: 2            # two takes to choose from in the edit\n",
            "    variants: 2\n    pick: 2\n",
        );
    std::fs::write(&path, text).unwrap();
    (project, emu)
}

fn sheet(project: &Project, emu: &shotlist::emulator::Emulator) {
    let out = shotlist(
        project.dir.path(),
        &["sheet", "--endpoint", &emu.base_url()],
    );
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    assert!(
        support::text(&out).contains("renders/index.html: 8 shots, 9 takes"),
        "{}",
        support::text(&out)
    );
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,1400",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The page's DOM after its script ran, as Chromium has it.
fn dump_dom(page: &Path, fragment: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(chromium_args(profile.path()))
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn screenshot(page: &Path, fragment: &str) -> image::RgbImage {
    let profile = tempfile::tempdir().unwrap();
    let png = profile.path().join("shot.png");
    let out = Command::new(chromium())
        .args(chromium_args(profile.path()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out));
    image::open(&png).expect("Chromium wrote a PNG").into_rgb8()
}

/// Every value of `attr="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The ids of the shots the page shows (sections without `hidden`).
fn shown(dom: &str) -> Vec<String> {
    dom.match_indices("<section class=\"shot\"")
        .filter_map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            let id = attribute_values(tag, "id")[0].trim_start_matches("shot-");
            (!tag.contains(" hidden")).then(|| id.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_opens_the_sheet_of_the_example_every_link_resolves_and_the_filters_work() {
    let (project, emu) = rendered_example().await;
    sheet(&project, &emu);
    let page = project.path("renders/index.html");
    let renders = project.path("renders");

    // What the browser has after the script ran: every still, video and link is a file.
    let dom = dump_dom(&page, "");
    let mut sources: Vec<&str> = Vec::new();
    for attr in ["src", "poster", "href"] {
        sources.extend(attribute_values(&dom, attr));
    }
    let videos = attribute_values(&dom, "src").len();
    assert_eq!(videos, 9, "one <video> per take of the 8 shots");
    assert_eq!(
        attribute_values(&dom, "poster").len(),
        9,
        "a still per take"
    );
    for source in &sources {
        assert!(!source.contains("://"), "the page links outside: {source}");
        let file: PathBuf = renders.join(percent_decode(source));
        assert!(file.is_file(), "broken link in the sheet: {source}");
        if attribute_values(&dom, "poster").contains(source) {
            image::open(&file).unwrap_or_else(|e| panic!("{source} is no image: {e}"));
        }
    }
    // Every shot in manifest order, all shown; the chosen take of `logbook` is its second.
    let all = shown(&dom);
    assert_eq!(
        all,
        [
            "opening",
            "keeper-window",
            "lamp-room",
            "logbook",
            "stairs",
            "ship",
            "dawn",
            "title"
        ]
    );
    let logbook = &dom[dom.find("id=\"shot-logbook\"").unwrap()..];
    let logbook = &logbook[..logbook.find("</section>").unwrap()];
    let picked = &logbook[logbook.find("take picked").unwrap()..];
    assert!(
        picked[..picked.find("</figure>").unwrap()].contains("logbook-2.mp4"),
        "{logbook}"
    );
    let ship = &dom[dom.find("id=\"shot-ship\"").unwrap()..];
    assert!(ship.contains("data-status=\"stale\""));
    assert!(ship[..ship.find("</section>").unwrap()].contains("changed: prompt"));

    // The filters, from the address's fragment as a bookmark would give them.
    assert_eq!(shown(&dump_dom(&page, "#status=stale")), ["ship"]);
    assert_eq!(
        shown(&dump_dom(&page, "#tag=exterior")),
        ["opening", "ship", "dawn"]
    );
    assert_eq!(
        shown(&dump_dom(&page, "#status=fresh&tag=interior")),
        ["keeper-window", "lamp-room", "logbook", "stairs"]
    );
    assert!(shown(&dump_dom(&page, "#status=failed")).is_empty());

    // What a person sees: not blank, and a filter changes it.
    let full = screenshot(&page, "");
    let filtered = screenshot(&page, "#status=stale");
    let colours: std::collections::HashSet<[u8; 3]> = full.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 200,
        "a blank page: {} colours",
        colours.len()
    );
    let background = full.get_pixel(full.width() - 2, full.height() - 2).0;
    let ink = full.pixels().filter(|p| p.0 != background).count();
    assert!(
        ink * 5 > full.pixels().len(),
        "under a fifth of the screenshot differs from the background"
    );
    assert_ne!(
        full.as_raw(),
        filtered.as_raw(),
        "the filter changed nothing visible"
    );
}

/// (width, height, frame rate, seconds, has audio) of a video by ffprobe, checking the
/// size of every frame and the spacing of every packet.
fn ffprobe(path: &Path) -> (u32, u32, f64, f64, bool) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (bash scripts/test.sh installs it)");
    assert!(out.status.success(), "ffprobe rejected {}", path.display());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().unwrap();
    let video: Vec<&serde_json::Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .collect();
    assert_eq!(video.len(), 1, "one video stream");
    let rate = video[0]["r_frame_rate"].as_str().unwrap();
    let (n, d) = rate.split_once('/').unwrap();
    let fps = n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap();
    let seconds: f64 = json["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let frames = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "frame=width,height"])
        .arg(path)
        .output()
        .unwrap();
    let sizes: std::collections::BTreeSet<String> = String::from_utf8(frames.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(sizes.len(), 1, "one size in every frame: {sizes:?}");
    let packets = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"])
        .args(["-show_entries", "packet=duration"])
        .arg(path)
        .output()
        .unwrap();
    let spacing: std::collections::BTreeSet<String> = String::from_utf8(packets.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(spacing.len(), 1, "one frame rate throughout: {spacing:?}");
    (
        video[0]["width"].as_u64().unwrap() as u32,
        video[0]["height"].as_u64().unwrap() as u32,
        fps,
        seconds,
        streams.iter().any(|s| s["codec_type"] == "audio"),
    )
}

const ORDER: [&str; 8] = [
    "opening",
    "keeper-window",
    "lamp-room",
    "logbook",
    "stairs",
    "ship",
    "dawn",
    "title",
];

/// The chosen take's file of each shot, in manifest order.
fn picked_files(project: &Project) -> Vec<PathBuf> {
    ORDER
        .iter()
        .map(|id| {
            let name = if *id == "logbook" {
                "logbook-2.mp4".to_string()
            } else {
                format!("{id}.mp4")
            };
            project.path("renders").join(name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn opentimelineio_reads_the_exported_timeline_one_clip_per_shot_with_its_real_length() {
    let (project, _emu) = rendered_example().await;
    std::fs::create_dir(project.path("edit")).unwrap();
    let out = shotlist(
        project.dir.path(),
        &["export", "--otio", "edit/teaser.otio"],
    );
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    // `ship` changed after it was rendered: its old take goes out, and is named.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: `ship` is stale (changed: prompt)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("is stale").count(), 1, "{stderr}");
    let python = std::env::var("SHOTLIST_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import json, sys
import opentimelineio as otio
timeline = otio.adapters.read_from_file(sys.argv[1])
clips = []
for clip in timeline.find_clips():
    ref = clip.media_reference
    clips.append({
        "name": clip.name,
        "url": ref.target_url,
        "seconds": clip.duration().to_seconds(),
        "media_seconds": ref.available_range.duration.to_seconds(),
        "start": timeline.tracks[0].range_of_child(clip).start_time.to_seconds(),
    })
print(json.dumps({"clips": clips, "tracks": len(timeline.tracks),
                  "total": timeline.duration().to_seconds()}))
"#;
    let read = Command::new(&python)
        .args(["-c", script])
        .arg(project.path("edit/teaser.otio"))
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "opentimelineio could not read the timeline (bash scripts/test.sh installs it): {}",
        support::text(&read)
    );
    let json: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let clips = json["clips"].as_array().unwrap();
    let names: Vec<&str> = clips.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ORDER, "one clip per shot, in manifest order");
    let mut start = 0.0;
    for (clip, file) in clips.iter().zip(picked_files(&project)) {
        let url = clip["url"].as_str().unwrap();
        assert!(!url.starts_with('/'), "a relative media reference: {url}");
        let resolved = project.path("edit").join(percent_decode(url));
        assert_eq!(
            resolved.canonicalize().unwrap(),
            file.canonicalize().unwrap(),
            "{url}"
        );
        let (_, _, _, seconds, _) = ffprobe(&file);
        for key in ["seconds", "media_seconds"] {
            let got = clip[key].as_f64().unwrap();
            assert!(
                (got - seconds).abs() < 0.01,
                "{url}: {key} {got} vs {seconds}"
            );
        }
        assert!((clip["start"].as_f64().unwrap() - start).abs() < 0.01);
        start += seconds;
    }
    assert!((json["total"].as_f64().unwrap() - start).abs() < 0.01);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_joined_mp4_has_one_size_one_rate_the_summed_length_and_the_sound_it_was_given() {
    let (project, _emu) = rendered_example().await;
    // One take replaced by a video of another size, rate and length, with sound.
    let title = project.path("renders/title.mp4");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25:duration=3",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-shortest",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(&title)
        .output()
        .expect("ffmpeg runs (bash scripts/test.sh installs it)");
    assert!(made.status.success(), "{}", support::text(&made));

    let expected: f64 = picked_files(&project).iter().map(|f| ffprobe(f).3).sum();
    let out = shotlist(project.dir.path(), &["export", "--mp4", "teaser.mp4"]);
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    let (width, height, fps, seconds, audio) = ffprobe(&project.path("teaser.mp4"));
    // Every take is of another size: the first in manifest order wins; most are 12 fps.
    assert_eq!((width, height), (1280, 720));
    assert!((fps - 12.0).abs() < 1e-9, "{fps}");
    assert!((seconds - expected).abs() < 0.1, "{seconds} vs {expected}");
    assert!(audio, "the sound of the take that had some is kept");
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(project.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".shotlist-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A shot not on disk: refused by id; with --allow-missing, a slate of its length.
    std::fs::remove_file(project.path("renders/stairs.mp4")).unwrap();
    let out = shotlist(project.dir.path(), &["export", "--mp4", "teaser.mp4"]);
    assert_eq!(support::code(&out), 1, "{}", support::text(&out));
    assert!(
        support::text(&out).contains("`stairs`"),
        "{}",
        support::text(&out)
    );
    assert_eq!(
        ffprobe(&project.path("teaser.mp4")).3,
        seconds,
        "a refused export leaves the old file"
    );
    let out = shotlist(
        project.dir.path(),
        &[
            "export",
            "--mp4",
            "teaser.mp4",
            "--otio",
            "teaser.otio",
            "--allow-missing",
            "--size",
            "1280x720",
            "--fps",
            "24",
        ],
    );
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    let (width, height, fps, with_slate, _) = ffprobe(&project.path("teaser.mp4"));
    assert_eq!((width, height), (1280, 720));
    assert!((fps - 24.0).abs() < 1e-9);
    // `stairs` is 5 s in the manifest, as its slate.
    assert!(
        (with_slate - seconds).abs() < 0.1,
        "{with_slate} vs {seconds}"
    );
    let timeline = std::fs::read_to_string(project.path("teaser.otio")).unwrap();
    assert!(timeline.contains("MissingReference.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn render_refreshes_the_sheet_at_the_end_of_every_run_unless_told_not_to() {
    let emu = support::emulator(support::emulator_config()).await;
    let project = Project::new(&support::manifest(2, 1, ""));
    let page = project.path("renders/index.html");
    let out = project.render(&emu, &["--no-sheet"]).await;
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    assert!(!page.exists(), "--no-sheet wrote the sheet");
    // A run with nothing to do still writes it.
    let out = project.render(&emu, &[]).await;
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("data-status=\"fresh\"").count(), 2, "{html}");
    // An edit shows as stale on the next run's sheet, with the reason.
    let manifest = std::fs::read_to_string(project.path("shotlist.yaml")).unwrap();
    std::fs::write(
        project.path("shotlist.yaml"),
        manifest.replace("Shot 1, a lantern", "Shot 1, a storm lantern"),
    )
    .unwrap();
    let out = shotlist(
        project.dir.path(),
        &["sheet", "--endpoint", &emu.base_url()],
    );
    assert_eq!(support::code(&out), 0, "{}", support::text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<p class=\"reason\">changed: prompt</p>"),
        "{html}"
    );
    emu.shutdown().await;
}

/// A video whose MP4 tables are damaged, in a way that makes the MP4 reader panic (an
/// overflowing sample duration), is read by ffprobe or is an error naming it: never a
/// panic's message on the user's terminal.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_video_is_an_error_or_read_by_ffprobe_never_a_panic() {
    let (project, emu) = rendered_example().await;
    let video = project.path("renders/dawn.mp4");
    let mut bytes = std::fs::read(&video).unwrap();
    let stts = bytes.windows(4).position(|w| w == b"stts").unwrap();
    // `stts`, version and flags, entry count, sample count: then the sample duration.
    bytes[stts + 16] = 0xff;
    std::fs::write(&video, bytes).unwrap();
    let base_url = emu.base_url();
    for args in [
        &["sheet", "--endpoint", &base_url][..],
        &["export", "--otio", "edit/damaged.otio"][..],
    ] {
        let out = shotlist(project.dir.path(), args);
        let all = support::text(&out);
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        match support::code(&out) {
            0 => {}
            1 => assert!(all.contains("dawn.mp4"), "{args:?}: {all}"),
            other => panic!("{args:?} exited {other}: {all}"),
        }
    }
}
