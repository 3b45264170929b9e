//! Training the adapters on synthetic pairs.
//!
//! The paper's recipe is the default: 256x256 input, batch 4, AdamW with learning rate
//! 1e-4 and PyTorch's defaults (betas 0.9/0.999, epsilon 1e-8, weight decay 0.01; burn's
//! own defaults differ), 10 epochs, BCE + dice. On `Device::flex()` a run is deterministic
//! for its seed: the seed draws the adapters and the batch order of every epoch.
//!
//! **Frozen-prefix cache.** The patch embedding and the blocks before the first adapter
//! never change, so their output is computed once per pair and reused every epoch, for as
//! many pairs as fit in [`TrainConfig::cache_bytes`]; the rest is recomputed each time.
//!
//! **Stopping.** A NaN or infinite loss stops training: the adapters go back to the last
//! ones whose loss was finite, and those are what the run hands back. A cancelled run ([`Trainer::run`]'s flag, checked
//! between steps) hands back the adapters of the last finished epoch.
//!
//! **The web.** [`Trainer::step`] is async and reads the loss with `into_data_async`, so
//! the page can train without a blocking GPU read; [`Trainer::step_blocking`] is the
//! native twin.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use super::ProsError;
use super::adapter::Adapters;
use super::adapter_file::parameters;
use super::loss::LossKind;
use super::model::ProsModel;
use super::random::SeededRng;
use crate::sam::PIXEL_MEAN;
use crate::sam::PIXEL_STD;

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Pairs per step (4).
    pub batch_size: usize,
    /// Passes over the pairs (10).
    pub epochs: usize,
    /// AdamW learning rate (1e-4).
    pub learning_rate: f64,
    /// AdamW first-moment decay (0.9).
    pub beta_1: f32,
    /// AdamW second-moment decay (0.999).
    pub beta_2: f32,
    /// AdamW epsilon (1e-8).
    pub epsilon: f32,
    /// AdamW decoupled weight decay (0.01).
    pub weight_decay: f32,
    /// The objective.
    pub loss: LossKind,
    /// Seeds the adapters and the batch order.
    pub seed: u64,
    /// Memory for cached frozen-prefix outputs, in bytes (0 turns the cache off).
    pub cache_bytes: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 4,
            epochs: 10,
            learning_rate: 1e-4,
            beta_1: super::optimizer::PYTORCH_BETAS.0,
            beta_2: super::optimizer::PYTORCH_BETAS.1,
            epsilon: super::optimizer::PYTORCH_EPSILON,
            weight_decay: super::optimizer::PYTORCH_WEIGHT_DECAY,
            loss: LossKind::default(),
            seed: 0,
            cache_bytes: 1 << 30,
        }
    }
}

impl TrainConfig {
    /// The paper's settings with what a user chose (the CLI's flags, the page's form): the
    /// loss by name (one of [`LossKind::NAMES`]) and the cache in MiB. Refuses an unknown
    /// loss, a batch or epoch count of 0 and a learning rate that is not a positive number.
    pub fn chosen(
        batch_size: usize,
        epochs: usize,
        learning_rate: f64,
        loss: &str,
        seed: u64,
        cache_mib: usize,
    ) -> Result<Self, ProsError> {
        let loss = LossKind::from_name(loss).ok_or_else(|| {
            ProsError::TrainConfig(format!(
                "unknown loss `{loss}`; use one of {:?}",
                LossKind::NAMES
            ))
        })?;
        if batch_size == 0 || epochs == 0 {
            return Err(ProsError::TrainConfig(
                "the batch size and the number of epochs must be at least 1".to_owned(),
            ));
        }
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(ProsError::TrainConfig(format!(
                "the learning rate must be a positive number; it is {learning_rate}"
            )));
        }
        Ok(Self {
            batch_size,
            epochs,
            learning_rate,
            loss,
            seed,
            cache_bytes: cache_mib << 20,
            ..Self::default()
        })
    }
}

/// One synthetic pair at the model's input size.
#[derive(Debug, Clone)]
pub struct TrainingPair {
    /// The normal image with pasted defects.
    pub image: RgbImage,
    /// 255 where a defect was pasted, 0 elsewhere.
    pub mask: GrayImage,
}

/// What one call of [`Trainer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepOutcome {
    /// A step was applied; the loss is that of the batch before the update.
    Step {
        /// Epoch of the step (from 0).
        epoch: usize,
        /// Step within the epoch (from 0).
        step: usize,
        /// The batch loss.
        loss: f32,
        /// Whether this step finished its epoch.
        epoch_done: bool,
    },
    /// The loss was not finite (nothing was applied), or the step that ended an epoch
    /// made the adapters non-finite (the epoch is dropped): training is over, and the
    /// adapters are the last good ones.
    NotFinite {
        /// Epoch where it happened.
        epoch: usize,
        /// The loss read, or in the second case the adapters' summed magnitude.
        loss: f32,
    },
    /// All epochs are done.
    Finished,
}

/// How a [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEnd {
    /// Every epoch finished.
    Finished,
    /// The flag was raised; the adapters are those of the last finished epoch.
    Cancelled,
    /// A loss was NaN or infinite; the adapters are the last good ones.
    NotFinite,
}

/// Loss figures of a run so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossHistory {
    /// The loss of every applied step.
    pub steps: Vec<f32>,
    /// The mean step loss of every finished epoch.
    pub epochs: Vec<f32>,
}

/// A training run in progress: the model, the adapters, the optimizer and the pairs.
pub struct Trainer {
    model: ProsModel,
    adapters: Adapters,
    epoch_adapters: Adapters,
    last_good: Adapters,
    optimizer: ModuleOptimizer,
    config: TrainConfig,
    images: Vec<Tensor<4>>,
    targets: Vec<Tensor<4>>,
    cache: Vec<Option<Tensor<4>>>,
    cache_capacity: usize,
    order: Vec<usize>,
    epoch: usize,
    step: usize,
    epoch_loss_sum: f64,
    /// Set when a non-finite value ended the run before its last epoch.
    stopped: bool,
    history: LossHistory,
    device: Device,
}

impl Trainer {
    /// Prepare a run. SAM (inside `model`) must be on the plain `device`; the adapters go
    /// on `device.autodiff()`. Every pair must be `image_size` square.
    pub fn new(
        model: ProsModel,
        pairs: &[TrainingPair],
        config: TrainConfig,
        device: &Device,
    ) -> Result<Self, ProsError> {
        if pairs.is_empty() {
            return Err(ProsError::NoPairs);
        }
        if config.batch_size == 0 || config.epochs == 0 {
            return Err(ProsError::TrainConfig(
                "the batch size and the number of epochs must be at least 1".to_owned(),
            ));
        }
        let size = model.image_size();
        let mut images = Vec::with_capacity(pairs.len());
        let mut targets = Vec::with_capacity(pairs.len());
        for (index, pair) in pairs.iter().enumerate() {
            let dims = (pair.image.dimensions(), pair.mask.dimensions());
            if dims != ((size as u32, size as u32), (size as u32, size as u32)) {
                return Err(ProsError::PairSize {
                    index,
                    image: dims.0,
                    mask: dims.1,
                    size,
                });
            }
            images.push(normalized_image(&pair.image, device));
            targets.push(mask_target(&pair.mask, device));
        }

        let autodiff = device.clone().autodiff();
        let mut adapters = Adapters::new(
            &model.config,
            encoder_dim(&model),
            model.sam.mask_decoder.transformer_dim,
            model.sam.mask_decoder.transformer.layers.len(),
            config.seed,
            &autodiff,
        );
        if model.config.train_hypernetwork {
            adapters = adapters.with_hypernetwork(model.hypernetwork_layers(), &autodiff);
        }

        let grid = size / crate::sam::config::PATCH_SIZE;
        let entry_bytes = grid * grid * encoder_dim(&model) * std::mem::size_of::<f32>();
        let cache_capacity = (config.cache_bytes / entry_bytes.max(1)).min(pairs.len());
        log::debug!(
            "frozen-prefix cache: {cache_capacity} of {} pairs",
            pairs.len()
        );

        let optimizer = adamw(&config);

        let mut trainer = Self {
            model,
            epoch_adapters: adapters.clone(),
            last_good: adapters.clone(),
            adapters,
            optimizer,
            images,
            targets,
            cache: vec![None; pairs.len()],
            cache_capacity,
            order: Vec::new(),
            epoch: 0,
            step: 0,
            epoch_loss_sum: 0.0,
            stopped: false,
            history: LossHistory::default(),
            device: device.clone(),
            config,
        };
        trainer.shuffle();
        Ok(trainer)
    }

    /// Start from given adapters instead of fresh ones (to resume, or to reproduce a
    /// reference step). They must be on `device.autodiff()` and fit the model's config.
    pub fn with_adapters(mut self, adapters: Adapters) -> Self {
        self.epoch_adapters = adapters.clone();
        self.last_good = adapters.clone();
        self.adapters = adapters;
        self
    }

    /// The current adapters (after the last applied step).
    pub fn adapters(&self) -> &Adapters {
        &self.adapters
    }

    /// The adapters at the end of the last finished epoch (the fresh ones before that).
    pub fn epoch_adapters(&self) -> &Adapters {
        &self.epoch_adapters
    }

    /// The model the adapters plug into.
    pub fn model(&self) -> &ProsModel {
        &self.model
    }

    /// The run's hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Loss figures so far.
    pub fn history(&self) -> &LossHistory {
        &self.history
    }

    /// Finished epochs.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.images.len().div_ceil(self.config.batch_size)
    }

    /// Split into the model and the adapters of the last finished epoch.
    pub fn into_parts(self) -> (ProsModel, Adapters, LossHistory) {
        (self.model, self.epoch_adapters, self.history)
    }

    /// One step, reading the loss without blocking (usable in the browser).
    pub async fn step(&mut self) -> Result<StepOutcome, ProsError> {
        let Some(loss) = self.forward_loss() else {
            return Ok(StepOutcome::Finished);
        };
        let data = loss
            .clone()
            .into_data_async()
            .await
            .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
        let value = first_value(data)?;
        let outcome = self.apply(loss, value);
        if !ends_epoch(&outcome) {
            return Ok(outcome);
        }
        let magnitude = magnitude(&self.adapters, &self.device)
            .into_data_async()
            .await
            .map_err(|e| ProsError::Backend(format!("{e:?}")))?;
        Ok(self.end_epoch(outcome, first_value(magnitude)?))
    }

    /// One step, reading the loss synchronously (native only: this blocks on the device).
    pub fn step_blocking(&mut self) -> Result<StepOutcome, ProsError> {
        let Some(loss) = self.forward_loss() else {
            return Ok(StepOutcome::Finished);
        };
        let value = first_value(loss.clone().into_data())?;
        let outcome = self.apply(loss, value);
        if !ends_epoch(&outcome) {
            return Ok(outcome);
        }
        let magnitude = first_value(magnitude(&self.adapters, &self.device).into_data())?;
        Ok(self.end_epoch(outcome, magnitude))
    }

    /// Keep the adapters of the epoch `outcome` ended when their summed magnitude is
    /// finite. Otherwise the last step blew them up, and no later loss would show it
    /// before they are saved: go back to the previous epoch's adapters and stop.
    fn end_epoch(&mut self, outcome: StepOutcome, magnitude: f32) -> StepOutcome {
        if magnitude.is_finite() {
            self.epoch_adapters = self.adapters.clone();
            return outcome;
        }
        self.epoch -= 1;
        self.stopped = true;
        let epoch = self.epoch;
        self.history.epochs.pop();
        self.adapters = self.epoch_adapters.clone();
        self.last_good = self.epoch_adapters.clone();
        StepOutcome::NotFinite {
            epoch,
            loss: magnitude,
        }
    }

    /// Train until the last epoch, a non-finite loss or `cancel`, calling `progress` after
    /// every step. Native only (blocking reads).
    pub fn run(
        &mut self,
        cancel: &AtomicBool,
        mut progress: impl FnMut(&StepOutcome),
    ) -> Result<RunEnd, ProsError> {
        loop {
            if cancel.load(Ordering::Relaxed) {
                log::info!(
                    "training cancelled; keeping the adapters of epoch {}",
                    self.epoch
                );
                return Ok(RunEnd::Cancelled);
            }
            let outcome = self.step_blocking()?;
            progress(&outcome);
            match outcome {
                StepOutcome::Finished => return Ok(RunEnd::Finished),
                StepOutcome::NotFinite { epoch, loss } => {
                    log::warn!(
                        "loss {loss} in epoch {epoch}; stopping with the last good adapters"
                    );
                    return Ok(RunEnd::NotFinite);
                }
                StepOutcome::Step { .. } => {}
            }
        }
    }

    /// The loss of the next batch, with its graph; `None` when all epochs are done.
    fn forward_loss(&mut self) -> Option<Tensor<1>> {
        if self.stopped || self.epoch >= self.config.epochs {
            return None;
        }
        let start = self.step * self.config.batch_size;
        let end = (start + self.config.batch_size).min(self.order.len());
        let batch: Vec<usize> = self.order[start..end].to_vec();

        let prefix = Tensor::cat(batch.iter().map(|&i| self.prefix_of(i)).collect(), 0);
        let target = Tensor::cat(batch.iter().map(|&i| self.targets[i].clone()).collect(), 0);
        let logits = self.model.forward_from_prefix(prefix, &self.adapters);
        Some(self.config.loss.compute(logits, target))
    }

    /// Apply the step whose loss is `loss` (read as `value`), or stop on a bad value.
    fn apply(&mut self, loss: Tensor<1>, value: f32) -> StepOutcome {
        if !value.is_finite() {
            // The current adapters made this loss: go back to the last ones whose loss was
            // finite, and end the run (later calls report Finished).
            let epoch = self.epoch;
            self.stopped = true;
            self.adapters = self.last_good.clone();
            self.epoch_adapters = self.last_good.clone();
            return StepOutcome::NotFinite { epoch, loss: value };
        }

        let grads = GradientsParams::from_grads(loss.backward(), &self.adapters);
        self.last_good = self.adapters.clone();
        let adapters = self.adapters.clone();
        self.adapters = self
            .optimizer
            .step(self.config.learning_rate, adapters, grads);

        self.history.steps.push(value);
        self.epoch_loss_sum += f64::from(value);
        let (epoch, step) = (self.epoch, self.step);
        self.step += 1;
        let epoch_done = self.step == self.steps_per_epoch();
        if epoch_done {
            let mean = (self.epoch_loss_sum / self.step as f64) as f32;
            self.history.epochs.push(mean);
            log::info!(
                "epoch {} of {}: mean loss {mean:.5}",
                epoch + 1,
                self.config.epochs
            );
            self.epoch += 1;
            self.step = 0;
            self.epoch_loss_sum = 0.0;
            self.shuffle();
        }
        StepOutcome::Step {
            epoch,
            step,
            loss: value,
            epoch_done,
        }
    }

    /// The frozen prefix of pair `index`, from the cache when it is there.
    fn prefix_of(&mut self, index: usize) -> Tensor<4> {
        if let Some(cached) = &self.cache[index] {
            return cached.clone();
        }
        let prefix = self.model.prefix(self.images[index].clone());
        if index < self.cache_capacity {
            self.cache[index] = Some(prefix.clone());
        }
        prefix
    }

    /// The batch order of the current epoch, drawn from the seed and the epoch.
    fn shuffle(&mut self) {
        self.order = (0..self.images.len()).collect();
        let mut rng = SeededRng::new(self.config.seed ^ (0xA5A5_0000 + self.epoch as u64));
        rng.shuffle(&mut self.order);
    }

    /// The plain device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// AdamW with the run's settings (burn's own defaults differ from PyTorch's).
pub fn adamw(config: &TrainConfig) -> ModuleOptimizer {
    super::optimizer::adamw(
        config.beta_1,
        config.beta_2,
        config.epsilon,
        config.weight_decay,
    )
}

/// Width of the image encoder's tokens.
fn encoder_dim(model: &ProsModel) -> usize {
    model.sam.image_encoder.pos_embed.val().dims()[3]
}

/// Whether `outcome` is a step that finished its epoch.
fn ends_epoch(outcome: &StepOutcome) -> bool {
    matches!(
        outcome,
        StepOutcome::Step {
            epoch_done: true,
            ..
        }
    )
}

/// The sum of the absolute values of every learnable parameter: finite exactly when all
/// of them are (short of an overflow, which is as unusable).
///
/// # Shapes
/// - output: `[1]`
fn magnitude(adapters: &Adapters, device: &Device) -> Tensor<1> {
    let (weights, biases) = parameters(adapters);
    weights
        .into_iter()
        .map(|(_, t)| t.detach().abs().sum())
        .chain(biases.into_iter().map(|(_, t)| t.detach().abs().sum()))
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| Tensor::zeros([1], device))
}

/// The first value of a one-element tensor's data.
fn first_value(data: TensorData) -> Result<f32, ProsError> {
    data.try_to_vec::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .ok_or_else(|| ProsError::Backend("the loss tensor is empty or not f32".to_owned()))
}

/// An RGB image normalised with SAM's pixel statistics.
///
/// # Shapes
///
/// - output: `[1, 3, height, width]`
pub fn normalized_image(image: &RgbImage, device: &Device) -> Tensor<4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut planes = vec![0f32; 3 * h * w];
    for (x, y, p) in image.enumerate_pixels() {
        for c in 0..3 {
            planes[c * h * w + y as usize * w + x as usize] =
                (f32::from(p.0[c]) - PIXEL_MEAN[c]) / PIXEL_STD[c];
        }
    }
    Tensor::from_data(TensorData::new(planes, [1, 3, h, w]), device)
}

/// A 0/255 mask as 0/1 targets.
///
/// # Shapes
///
/// - output: `[1, 1, height, width]`
pub fn mask_target(mask: &GrayImage, device: &Device) -> Tensor<4> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let values: Vec<f32> = mask
        .pixels()
        .map(|p| f32::from(u8::from(p[0] >= 128)))
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 1, h, w]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pros::adapter::AdapterConfig;
    use crate::sam::{Sam, SamConfig};
    use image::{Luma, Rgb};

    fn pairs(n: usize, size: u32) -> Vec<TrainingPair> {
        let mut rng = SeededRng::new(5);
        (0..n)
            .map(|i| TrainingPair {
                image: RgbImage::from_fn(size, size, |_, _| {
                    let v = (rng.next_u64() & 0xff) as u8;
                    Rgb([v, v / 2, 255 - v])
                }),
                mask: GrayImage::from_fn(size, size, |x, y| {
                    let inside =
                        (10..30).contains(&x) && (i as u32 * 5..i as u32 * 5 + 12).contains(&y);
                    Luma([if inside { 255 } else { 0 }])
                }),
            })
            .collect()
    }

    fn trainer(k: usize, epochs: usize, cache_bytes: usize, lr: f64) -> Trainer {
        trainer_with_batch(k, epochs, cache_bytes, lr, 2)
    }

    /// A run over four pairs, two steps per epoch at batch 2, one at batch 4.
    fn trainer_with_batch(
        k: usize,
        epochs: usize,
        cache_bytes: usize,
        lr: f64,
        batch_size: usize,
    ) -> Trainer {
        let device = Device::flex();
        let config = SamConfig::tiny_padded();
        let sam = Sam::new(&config, &device).unwrap();
        let model =
            ProsModel::new(sam, AdapterConfig::last_k(k, config.encoder_depth).unwrap()).unwrap();
        let train = TrainConfig {
            epochs,
            cache_bytes,
            learning_rate: lr,
            batch_size,
            seed: 4,
            ..TrainConfig::default()
        };
        Trainer::new(model, &pairs(4, config.image_size as u32), train, &device).unwrap()
    }

    fn snapshot(adapters: &Adapters) -> Vec<f32> {
        let (w, b) = parameters(adapters);
        w.into_iter()
            .flat_map(|(_, t)| t.into_data().try_to_vec::<f32>().unwrap())
            .chain(
                b.into_iter()
                    .flat_map(|(_, t)| t.into_data().try_to_vec::<f32>().unwrap()),
            )
            .collect()
    }

    /// Loss values of every step of a run.
    fn run_all(t: &mut Trainer) -> Vec<f32> {
        assert_eq!(
            t.run(&AtomicBool::new(false), |_| {}).unwrap(),
            RunEnd::Finished
        );
        t.history().steps.clone()
    }

    #[test]
    fn a_seed_gives_the_same_run_and_the_cache_changes_nothing() {
        // Sam::new draws random weights, so all three runs share one SAM: `c` repeats
        // `a` exactly, `b` differs from `a` only in having no cache.
        let mut a = trainer(1, 2, 1 << 30, 1e-3);
        let device = Device::flex();
        let model_b = ProsModel::new(a.model().sam.clone(), a.model().config.clone()).unwrap();
        let config_b = TrainConfig {
            cache_bytes: 0,
            ..a.config().clone()
        };
        let mut b = Trainer::new(model_b, &pairs(4, 96), config_b, &device).unwrap();
        let model_c = ProsModel::new(a.model().sam.clone(), a.model().config.clone()).unwrap();
        let mut c = Trainer::new(model_c, &pairs(4, 96), a.config().clone(), &device).unwrap();

        let la = run_all(&mut a);
        let lb = run_all(&mut b);
        let lc = run_all(&mut c);
        assert_eq!(la.len(), 4);
        assert_eq!(la, lc, "same seed, same losses");
        assert_eq!(snapshot(a.adapters()), snapshot(c.adapters()));
        for (x, y) in la.iter().zip(&lb) {
            assert!((x - y).abs() < 1e-6, "cache on {x} vs off {y}");
        }
        assert_ne!(la[0], la[3], "training moved the loss");
    }

    #[test]
    fn cancelling_keeps_the_last_finished_epoch() {
        let mut t = trainer(2, 3, 1 << 30, 1e-3);
        let device = Device::flex();
        let model = ProsModel::new(t.model().sam.clone(), t.model().config.clone()).unwrap();
        let one_epoch = TrainConfig {
            epochs: 1,
            ..t.config().clone()
        };
        let mut reference = Trainer::new(model, &pairs(4, 96), one_epoch, &device).unwrap();
        run_all(&mut reference);

        // Cancel after the first step of the second epoch.
        let cancel = AtomicBool::new(false);
        let mut steps = 0;
        let end = t
            .run(&cancel, |_| {
                steps += 1;
                if steps == 3 {
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .unwrap();
        assert_eq!(end, RunEnd::Cancelled);
        assert_eq!(t.epochs_done(), 1);
        let (_, kept, history) = t.into_parts();
        assert_eq!(history.steps.len(), 3);
        assert_eq!(snapshot(&kept), snapshot(reference.adapters()));
    }

    #[test]
    fn a_non_finite_loss_stops_with_the_last_good_adapters() {
        // A huge learning rate blows the adapters up after the first step.
        let mut t = trainer(1, 2, 0, 1e30);
        let start = snapshot(t.adapters());
        let first = t.step_blocking().unwrap();
        assert!(matches!(first, StepOutcome::Step { loss, .. } if loss.is_finite()));
        let second = t.step_blocking().unwrap();
        assert!(
            matches!(second, StepOutcome::NotFinite { .. }),
            "{second:?}"
        );
        assert_eq!(t.step_blocking().unwrap(), StepOutcome::Finished);
        assert_eq!(t.epochs_done(), 0, "no epoch finished");
        // The adapters that gave the last finite loss are the starting ones.
        assert_eq!(snapshot(t.adapters()), start);
        let (_, kept, _) = t.into_parts();
        assert_eq!(snapshot(&kept), start);
    }

    #[test]
    fn adapters_blown_up_by_an_epochs_last_step_are_not_kept() {
        // One step per epoch: the step that ends epoch 1 overflows the adapters, and no
        // later loss would reveal it before they are saved.
        let mut t = trainer_with_batch(1, 3, 0, 1e39, 4);
        let start = snapshot(t.adapters());
        let first = t.step_blocking().unwrap();
        assert!(
            matches!(first, StepOutcome::NotFinite { epoch: 0, loss } if !loss.is_finite()),
            "{first:?}"
        );
        assert_eq!(t.step_blocking().unwrap(), StepOutcome::Finished);
        assert_eq!(t.epochs_done(), 0);
        assert_eq!(snapshot(t.adapters()), start);
        let (_, kept, history) = t.into_parts();
        assert_eq!(snapshot(&kept), start);
        assert!(history.epochs.is_empty(), "{history:?}");
    }

    /// Poll a future to completion with a no-op waker (flex answers at once).
    fn poll_ready<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut context) {
                return out;
            }
        }
    }

    #[test]
    fn the_async_step_equals_the_blocking_one() {
        let mut a = trainer(1, 1, 1 << 30, 1e-3);
        let device = Device::flex();
        let model = ProsModel::new(a.model().sam.clone(), a.model().config.clone()).unwrap();
        let mut b = Trainer::new(model, &pairs(4, 96), a.config().clone(), &device).unwrap();
        for _ in 0..2 {
            let x = poll_ready(a.step()).unwrap();
            let y = b.step_blocking().unwrap();
            assert_eq!(x, y);
        }
        assert_eq!(poll_ready(a.step()).unwrap(), StepOutcome::Finished);
        assert_eq!(snapshot(a.adapters()), snapshot(b.adapters()));
    }

    #[test]
    fn bad_pairs_are_refused() {
        let device = Device::flex();
        let config = SamConfig::tiny_padded();
        let sam = Sam::new(&config, &device).unwrap();
        let model = ProsModel::new(sam, AdapterConfig::last_k(1, 3).unwrap()).unwrap();
        let error = Trainer::new(model, &pairs(1, 64), TrainConfig::default(), &device)
            .err()
            .unwrap();
        assert!(matches!(error, ProsError::PairSize { .. }), "{error}");
        let sam = Sam::new(&config, &device).unwrap();
        let model = ProsModel::new(sam, AdapterConfig::last_k(1, 3).unwrap()).unwrap();
        assert!(matches!(
            Trainer::new(model, &[], TrainConfig::default(), &device),
            Err(ProsError::NoPairs)
        ));
    }

    #[test]
    fn chosen_settings_keep_the_paper_optimizer_and_refuse_bad_values() {
        let config = TrainConfig::chosen(8, 3, 1e-3, "bce-dice", 7, 16).unwrap();
        assert_eq!((config.batch_size, config.epochs, config.seed), (8, 3, 7));
        assert_eq!(config.cache_bytes, 16 << 20);
        let paper = TrainConfig::default();
        assert_eq!(
            (config.beta_1, config.beta_2, config.weight_decay),
            (paper.beta_1, paper.beta_2, paper.weight_decay)
        );
        let refused = |batch, epochs, lr, loss: &str| {
            TrainConfig::chosen(batch, epochs, lr, loss, 0, 0)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(4, 10, 1e-4, "l2").contains("unknown loss `l2`"));
        assert!(refused(0, 10, 1e-4, "bce-dice").contains("at least 1"));
        assert!(refused(4, 0, 1e-4, "bce-dice").contains("at least 1"));
        assert!(refused(4, 10, f64::NAN, "bce-dice").contains("positive number"));
        assert!(refused(4, 10, -1.0, "bce-dice").contains("positive number"));
    }
}
