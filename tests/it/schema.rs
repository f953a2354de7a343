//! The committed JSON Schema is the one the code generates.

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(shotlist::schema::SCHEMA_PATH);
    let committed =
        std::fs::read_to_string(&path).expect("schemas/shotlist.schema.json is committed");
    let generated = shotlist::schema::manifest_schema_text();
    assert!(
        committed == generated,
        "schemas/shotlist.schema.json is stale: run `cargo run -- schema > schemas/shotlist.schema.json` and commit it"
    );
}
