//! `ragmill embed`.

use anyhow::Result;
use ragmill_core::Embedder;
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{EmbedArgs, Global};
use crate::commands::print_json;

pub async fn run(g: &Global, args: EmbedArgs) -> Result<Status> {
    let embedder = app::embedder(g, 32)?;
    let vectors = embedder.embed(args.texts.clone()).await?;
    let info = embedder.info();
    if g.json {
        print_json(
            &json!({"model": info.id, "dimensions": info.dimensions, "embeddings": vectors}),
        );
    } else {
        println!("model {} ({} dimensions)", info.id, info.dimensions);
        for (text, v) in args.texts.iter().zip(&vectors) {
            let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:+.4}")).collect();
            println!("{text:?}: [{}, …]", head.join(", "));
        }
    }
    Ok(Status::Ok)
}
