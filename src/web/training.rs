//! A training run for the page: pairs in, one step per call, adapters out.
//!
//! The methods that touch the GPU return promises and read back only through
//! `into_data_async`; the page calls [`TrainingRun::step`] in a loop and yields to the
//! browser between calls, so pausing is simply not calling it and stopping keeps the
//! adapters of the last finished epoch.

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::Module;
use image::GrayImage;
use js_sys::{Promise, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::js_error;
use super::model::SamModel;
use super::segmentation::AdapterSet;
use crate::image_input;
use crate::pros::adapter::AdapterConfig;
use crate::pros::adapter_file::{self, AdapterMetadata};
use crate::pros::model::ProsModel;
use crate::pros::predict::score_pairs_async;
use crate::pros::segment::SegmentConfig;
use crate::pros::train::{StepOutcome, TrainConfig, Trainer, TrainingPair};
use crate::sam::{Sam, SamConfig};

/// The page's training settings; missing fields take the paper's values.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    k: usize,
    positions: Vec<usize>,
    decoder_adapters: bool,
    train_hypernetwork: bool,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    loss: String,
    seed: u64,
    cache_mib: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let paper = TrainConfig::default();
        Self {
            k: 1,
            positions: Vec::new(),
            decoder_adapters: false,
            train_hypernetwork: false,
            epochs: paper.epochs,
            batch_size: paper.batch_size,
            learning_rate: paper.learning_rate,
            loss: "bce-dice".to_owned(),
            seed: 0,
            // The cache lives in GPU memory here; a browser tab gets less than the CLI.
            cache_mib: 256,
        }
    }
}

/// What one step did, for the page.
#[derive(Serialize)]
struct StepReport {
    /// "step", "not-finite" or "finished".
    kind: &'static str,
    epoch: usize,
    step: usize,
    loss: Option<f32>,
    epoch_done: bool,
    steps_per_epoch: usize,
    epochs: usize,
}

/// Everything a run needs before its first step.
struct Setup {
    sam: Sam,
    sam_config: SamConfig,
    sha256: String,
    device: burn::tensor::Device,
    adapter_config: AdapterConfig,
    config: TrainConfig,
    train: Vec<TrainingPair>,
    held_out: Vec<TrainingPair>,
}

/// A run in progress.
struct Run {
    trainer: Trainer,
    held_out: Vec<TrainingPair>,
    sam_config: SamConfig,
    sha256: String,
}

enum State {
    Collecting(Box<Setup>),
    Training(Box<Run>),
    /// A promise holds the run; it puts it back when it settles.
    Busy,
}

/// A training run of adapters on a loaded SAM.
#[wasm_bindgen]
pub struct TrainingRun {
    state: Rc<RefCell<State>>,
    image_size: u32,
    epochs: usize,
    learnable_parameters: usize,
}

const BUSY: &str = "the training run is busy with another call; wait for it to finish";

#[wasm_bindgen]
impl TrainingRun {
    /// A run on `model` with `settings` (`{ k, positions, decoder_adapters,
    /// train_hypernetwork, epochs, batch_size, learning_rate, loss, seed, cache_mib }`,
    /// each optional). Add pairs with [`Self::add_pair`], then call [`Self::step`].
    #[wasm_bindgen(constructor)]
    pub fn new(model: &SamModel, settings: JsValue) -> Result<TrainingRun, JsError> {
        let settings: Settings = if settings.is_undefined() || settings.is_null() {
            Settings::default()
        } else {
            serde_wasm_bindgen::from_value(settings)
                .map_err(|e| js_error(format!("bad training settings: {e}")))?
        };
        let config = TrainConfig::chosen(
            settings.batch_size,
            settings.epochs,
            settings.learning_rate,
            &settings.loss,
            settings.seed,
            settings.cache_mib,
        )
        .map_err(js_error)?;
        let sam_config = model.config.clone();
        let adapter_config = AdapterConfig::choose(
            settings.k,
            &settings.positions,
            settings.decoder_adapters,
            settings.train_hypernetwork,
            sam_config.encoder_depth,
        )
        .map_err(js_error)?;
        let learnable_parameters = adapter_config.learnable_parameters(
            sam_config.encoder_embed_dim,
            sam_config.prompt_embed_dim,
            sam_config.decoder_depth,
        );
        let setup = Setup {
            sam: model.sam.clone(),
            sam_config,
            sha256: model.sha256.clone(),
            device: model.device.clone(),
            adapter_config,
            config,
            train: Vec::new(),
            held_out: Vec::new(),
        };
        Ok(TrainingRun {
            state: Rc::new(RefCell::new(State::Collecting(Box::new(setup)))),
            image_size: model.image_size(),
            epochs: settings.epochs,
            learnable_parameters,
        })
    }

    /// Add a synthetic pair (PNG or JPEG image, PNG mask, both at the model's input size)
    /// to the training pairs, or to the held-out pairs scored after every epoch.
    pub fn add_pair(&mut self, image: &[u8], mask: &[u8], held_out: bool) -> Result<(), JsError> {
        let mut state = self.state.try_borrow_mut().map_err(|_| js_error(BUSY))?;
        let State::Collecting(setup) = &mut *state else {
            return Err(js_error(
                "training has started; pairs can only be added before the first step",
            ));
        };
        let image = image_input::decode(image).map_err(js_error)?;
        let mask: GrayImage = image::load_from_memory(mask)
            .map_err(|e| js_error(format!("the mask is not a readable image: {e}")))?
            .to_luma8();
        let size = self.image_size;
        if image.dimensions() != (size, size) || mask.dimensions() != (size, size) {
            return Err(js_error(format!(
                "this pair's image is {}x{} and its mask {}x{}, but the model takes \
                 {size}x{size}; synthesize the pairs again at the model's input size",
                image.width(),
                image.height(),
                mask.width(),
                mask.height()
            )));
        }
        let pair = TrainingPair { image, mask };
        if held_out {
            setup.held_out.push(pair);
        } else {
            setup.train.push(pair);
        }
        Ok(())
    }

    /// Learnable scalars of this run's adapters.
    pub fn learnable_parameters(&self) -> u32 {
        self.learnable_parameters as u32
    }

    /// Epochs asked for.
    pub fn epochs(&self) -> u32 {
        self.epochs as u32
    }

    /// One training step; resolves to `{ kind, epoch, step, loss, epoch_done,
    /// steps_per_epoch, epochs }` where kind is "step", "not-finite" (training stopped;
    /// the last good adapters are kept) or "finished".
    pub fn step(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut run = take_run(&state)?;
            let result = run.trainer.step().await;
            let report = result.map(|outcome| report(&outcome, &run.trainer));
            *state.borrow_mut() = State::Training(run);
            let report = report.map_err(js_error)?;
            Ok(serde_wasm_bindgen::to_value(&report).map_err(js_error)?)
        })
    }

    /// Dice and IoU of the adapters of the last finished epoch on the held-out pairs:
    /// resolves to `{ images, mean_dice, mean_iou, pooled_dice, pooled_iou }`, or null
    /// when there are no held-out pairs.
    pub fn evaluate(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let run = take_run(&state)?;
            let adapters = run.trainer.epoch_adapters().valid();
            let model = run.trainer.model();
            let metrics = score_pairs_async(
                model,
                &adapters,
                &run.held_out,
                &SegmentConfig::default(),
                run.trainer.device(),
            )
            .await;
            *state.borrow_mut() = State::Training(run);
            Ok(serde_wasm_bindgen::to_value(&metrics.map_err(js_error)?).map_err(js_error)?)
        })
    }

    /// The adapters of the last finished epoch, for segmentation and saving.
    pub fn adapters(&self) -> Result<AdapterSet, JsError> {
        let state = self.state.try_borrow().map_err(|_| js_error(BUSY))?;
        let run = match &*state {
            State::Training(run) => run,
            State::Collecting(_) => {
                return Err(js_error(
                    "training has not started: there are no trained adapters yet",
                ));
            }
            State::Busy => return Err(js_error(BUSY)),
        };
        let trainer = &run.trainer;
        Ok(AdapterSet {
            adapters: trainer.epoch_adapters().valid(),
            metadata: AdapterMetadata {
                sam_config: run.sam_config.clone(),
                k: trainer.model().config.k(),
                adapter_config: trainer.model().config.clone(),
                sam_sha256: run.sha256.clone(),
                seed: trainer.config().seed,
                epochs: trainer.epochs_done(),
                loss_history: trainer.history().clone(),
            },
        })
    }

    /// The adapter file (safetensors with metadata) of the last finished epoch.
    pub fn adapter_file(&self) -> Result<Promise, JsError> {
        let set = self.adapters()?;
        Ok(future_to_promise(async move {
            let bytes = adapter_file::to_bytes_async(&set.adapters, &set.metadata)
                .await
                .map_err(js_error)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        }))
    }
}

/// Take the run out of `state` for the length of a promise, starting it on first use.
fn take_run(state: &Rc<RefCell<State>>) -> Result<Box<Run>, JsValue> {
    let current = state
        .try_borrow_mut()
        .map_err(|_| js_error(BUSY))?
        .replace_busy();
    match current {
        State::Training(run) => Ok(run),
        State::Busy => Err(js_error(BUSY).into()),
        State::Collecting(setup) => match start(&setup) {
            Ok(run) => Ok(Box::new(run)),
            Err(e) => {
                *state.borrow_mut() = State::Collecting(setup);
                Err(js_error(e).into())
            }
        },
    }
}

impl State {
    fn replace_busy(&mut self) -> State {
        std::mem::replace(self, State::Busy)
    }
}

fn start(setup: &Setup) -> Result<Run, crate::pros::ProsError> {
    let model = ProsModel::new(setup.sam.clone(), setup.adapter_config.clone())?;
    let trainer = Trainer::new(model, &setup.train, setup.config.clone(), &setup.device)?;
    log::info!(
        "training K = {} on {} pairs ({} held out), {} steps per epoch",
        setup.adapter_config.k(),
        setup.train.len(),
        setup.held_out.len(),
        trainer.steps_per_epoch()
    );
    Ok(Run {
        trainer,
        held_out: setup.held_out.clone(),
        sam_config: setup.sam_config.clone(),
        sha256: setup.sha256.clone(),
    })
}

fn report(outcome: &StepOutcome, trainer: &Trainer) -> StepReport {
    let base = StepReport {
        kind: "finished",
        epoch: trainer.epochs_done(),
        step: 0,
        loss: None,
        epoch_done: false,
        steps_per_epoch: trainer.steps_per_epoch(),
        epochs: trainer.config().epochs,
    };
    match *outcome {
        StepOutcome::Step {
            epoch,
            step,
            loss,
            epoch_done,
        } => StepReport {
            kind: "step",
            epoch,
            step,
            loss: Some(loss),
            epoch_done,
            ..base
        },
        StepOutcome::NotFinite { epoch, loss } => StepReport {
            kind: "not-finite",
            epoch,
            loss: Some(loss),
            ..base
        },
        StepOutcome::Finished => base,
    }
}
