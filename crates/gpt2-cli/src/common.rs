//! Helpers shared by subcommands: model loading from `--model`.

use anyhow::Context;

/// Loads the model named by `--model`: a local folder or a Hugging Face hub id.
pub fn load_model(model: &str) -> anyhow::Result<gpt2::Model> {
    let dir = gpt2::hub::resolve(model, &gpt2::hub::HubOptions::default())
        .with_context(|| format!("--model {model}"))?;
    let params = gpt2::checkpoint::load(&dir).with_context(|| format!("--model {model}"))?;
    Ok(gpt2::Model::new(params))
}
