//! The sentence embedder on the real all-MiniLM-L6-v2 model that `./scripts/test.sh` prepares
//! (`./scripts/setup.sh embedding-model`), checked against `reference.json`: embeddings from
//! an independent numpy forward pass over the original safetensors weights.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use shopkeep::engine::{EngineError, SentenceEmbedder, TextEmbedder, EMBEDDING_BATCH};

#[derive(Deserialize)]
struct Reference {
    min_cosine: f32,
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn embedder() -> SentenceEmbedder {
    SentenceEmbedder::load(&SentenceEmbedder::default_dir(), 2).expect("embedding model loads")
}

fn reference() -> Reference {
    let path = SentenceEmbedder::default_dir().join("reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run ./scripts/test.sh", path.display()));
    serde_json::from_str(&text).expect("reference.json parses")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embeddings_match_the_numpy_reference() {
    let embedder = embedder();
    let reference = reference();
    assert!(reference.sentences.len() >= 6);
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    let vectors = embedder.embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for (i, (sentence, vector)) in reference.sentences.iter().zip(&vectors).enumerate() {
        assert_eq!(
            embedder.token_ids(&sentence.text).unwrap(),
            sentence.input_ids,
            "token ids of {:?}",
            sentence.text
        );
        assert_eq!(vector.len(), embedder.dimension());
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "norm {norm} for {:?}",
            sentence.text
        );
        let own = cosine(vector, &sentence.embedding);
        assert!(
            own >= reference.min_cosine,
            "cosine {own} with the reference for {:?}",
            sentence.text
        );
        // The threshold tells sentences apart: no other sentence's reference passes it.
        for (j, other) in reference
            .sentences
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
        {
            let cross = cosine(vector, &other.embedding);
            assert!(
                cross < reference.min_cosine,
                "sentence {i} is as close to sentence {j}'s reference ({cross}) as to its own"
            );
        }
    }
}

#[test]
fn long_text_is_cut_to_max_tokens() {
    let embedder = embedder();
    let long = "teapot ".repeat(500);
    let ids = embedder.token_ids(&long).unwrap();
    assert_eq!(ids.len(), embedder.max_tokens());
    assert_eq!(embedder.max_tokens(), 128);
    assert_eq!(embedder.embed(&[&long]).unwrap()[0].len(), 384);
}

#[test]
fn a_paraphrase_scores_above_an_unrelated_question() {
    let embedder = embedder();
    let v = embedder
        .embed(&[
            "where is my parcel",
            "has my package shipped yet",
            "what is the capital of France",
        ])
        .unwrap();
    let paraphrase = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(
        paraphrase > unrelated + 0.1,
        "paraphrase {paraphrase}, unrelated {unrelated}"
    );
}

#[test]
fn batching_and_order_do_not_change_a_text_s_vector() {
    let embedder = embedder();
    let texts: Vec<String> = (0..EMBEDDING_BATCH * 2 + 5)
        .map(|i| match i % 3 {
            0 => format!("Order {i} arrived with a chipped mug."),
            1 => format!("Can I change the delivery address of order {i} after paying?"),
            _ => format!("Gift card {i}"),
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = embedder.embed(&refs).unwrap();
    assert_eq!(together.len(), texts.len());
    for i in [0, 1, 2, EMBEDDING_BATCH, texts.len() - 1] {
        let alone = embedder.embed(&[refs[i]]).unwrap().remove(0);
        let same = cosine(&together[i], &alone);
        assert!(same > 0.9999, "text {i}: {same} between batched and alone");
    }
    assert!(embedder.embed(&[]).unwrap().is_empty());
    let empty = embedder.embed(&[""]).unwrap().remove(0);
    let norm = empty.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-4,
        "the empty text gives norm {norm}"
    );
}

#[test]
fn one_embedder_serves_several_threads() {
    let embedder: Arc<dyn TextEmbedder> = Arc::new(embedder());
    let expected = embedder.embed(&["Is the teapot dishwasher safe?"]).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let embedder = Arc::clone(&embedder);
                scope.spawn(move || embedder.embed(&["Is the teapot dishwasher safe?"]).unwrap())
            })
            .collect();
        for handle in handles {
            let got = handle.join().unwrap();
            assert!(cosine(&got[0], &expected[0]) > 0.9999);
        }
    });
}

#[test]
fn a_missing_model_names_the_path_and_the_setup_command() {
    let missing = Path::new("/nonexistent/shopkeep/all-minilm-l6-v2");
    let err = SentenceEmbedder::load(missing, 1).unwrap_err();
    assert!(
        matches!(&err, EngineError::EmbeddingModelMissing { path } if path == missing),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/shopkeep/all-minilm-l6-v2")
            && text.contains("./scripts/setup.sh embedding-model"),
        "{text}"
    );
}

#[test]
fn a_model_without_its_weights_file_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = SentenceEmbedder::default_dir();
    assert!(
        source.join("model.onnx.data").is_file(),
        "the embedding model keeps its weights beside model.onnx (tools/onnx_layout.py save_model)"
    );
    for file in ["model.onnx", "manifest.json", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let text = SentenceEmbedder::load(dir.path(), 1)
        .unwrap_err()
        .to_string();
    assert!(text.contains("model.onnx.data"), "{text}");
}
