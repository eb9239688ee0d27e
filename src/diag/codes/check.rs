//! Codes of the check phase (see the range table in `codes.rs`): E02xx names, E03xx arguments
//! and dtypes, E04xx shapes, E05xx training.

use super::{code_info, Code, CodeInfo};

// E02xx: names.
pub const CHECK_UNKNOWN_LAYER: Code = Code::new("E0200");
pub const CHECK_UNKNOWN_ARGUMENT: Code = Code::new("E0201");
pub const CHECK_UNKNOWN_NAME: Code = Code::new("E0202");
pub const CHECK_UNKNOWN_MODEL: Code = Code::new("E0203");
pub const CHECK_UNKNOWN_DATA: Code = Code::new("E0204");
pub const CHECK_DUPLICATE_BLOCK: Code = Code::new("E0205");
pub const CHECK_DUPLICATE_ARGUMENT: Code = Code::new("E0206");
pub const CHECK_USE_BEFORE_LET: Code = Code::new("E0207");
pub const CHECK_UNUSED_VALUE: Code = Code::new("E0208");
pub const CHECK_EMPTY_MODEL: Code = Code::new("E0209");
pub const CHECK_DUPLICATE_INPUT: Code = Code::new("E0210");
pub const CHECK_UNKNOWN_SETTING: Code = Code::new("E0211");
pub const CHECK_UNKNOWN_CHOICE: Code = Code::new("E0212");
pub const CHECK_NOT_A_LAYER: Code = Code::new("E0213");
pub const CHECK_NO_IMPLICIT_INPUT: Code = Code::new("E0214");
pub const CHECK_DUPLICATE_LAYER_NAME: Code = Code::new("E0215");
pub const CHECK_INVALID_LAYER_NAME: Code = Code::new("E0216");
pub const CHECK_DATA_SET_TOO_LARGE: Code = Code::new("E0217");
// E03xx: arguments and dtypes.
pub const CHECK_MISSING_ARGUMENT: Code = Code::new("E0300");
pub const CHECK_TOO_MANY_ARGUMENTS: Code = Code::new("E0301");
pub const CHECK_ARGUMENT_TYPE: Code = Code::new("E0302");
pub const CHECK_ARGUMENT_RANGE: Code = Code::new("E0303");
pub const CHECK_UNKNOWN_DTYPE: Code = Code::new("E0304");
pub const CHECK_NEEDS_FLOAT: Code = Code::new("E0305");
pub const CHECK_NEEDS_INTEGER: Code = Code::new("E0306");
pub const CHECK_DTYPE_MISMATCH: Code = Code::new("E0307");
pub const CHECK_INPUT_COUNT: Code = Code::new("E0308");
// E04xx: shapes.
pub const CHECK_RANK: Code = Code::new("E0400");
pub const CHECK_SHAPE_MISMATCH: Code = Code::new("E0401");
pub const CHECK_WINDOW_TOO_LARGE: Code = Code::new("E0402");
pub const CHECK_RESHAPE: Code = Code::new("E0403");
pub const CHECK_SYMBOL_CONFLICT: Code = Code::new("E0404");
pub const CHECK_OUTPUT_MISMATCH: Code = Code::new("E0405");
pub const CHECK_SIZE_INVALID: Code = Code::new("E0406");
pub const CHECK_SIZE_UNKNOWN: Code = Code::new("E0407");
pub const CHECK_TOO_MANY_LAYERS: Code = Code::new("E0408");
pub const CHECK_TOO_MANY_PARAMS: Code = Code::new("E0409");
pub const CHECK_MASK_UNSUPPORTED: Code = Code::new("E0499");
// E05xx: training.
pub const CHECK_MISSING_SETTING: Code = Code::new("E0500");
pub const CHECK_DUPLICATE_SETTING: Code = Code::new("E0501");
pub const CHECK_LOSS_OUTPUT: Code = Code::new("E0502");
pub const CHECK_LABELS_LOSS: Code = Code::new("E0503");
pub const CHECK_DATA_INPUT: Code = Code::new("E0504");
pub const CHECK_MONITOR: Code = Code::new("E0505");
pub const CHECK_LOSS_ACTIVATION: Code = Code::new("E0506");
pub const CHECK_NOT_TRAINABLE: Code = Code::new("E0507");
pub const CHECK_SCHEDULE_CHAIN: Code = Code::new("E0508");
pub const CHECK_METRIC_LOSS: Code = Code::new("E0510");
pub const CHECK_CLASS_WEIGHT: Code = Code::new("E0511");
pub const CHECK_DUPLICATE_METRIC: Code = Code::new("E0520");
pub const CHECK_TOP_K_ALL_CLASSES: Code = Code::new("E0521");
pub const CHECK_TARGET_INPUTS_SHAPE: Code = Code::new("E0522");
pub const CHECK_TARGET_INPUTS_SETTING: Code = Code::new("E0523");
pub const CHECK_INPUT_GROUP_NAME: Code = Code::new("E0524");
pub const CHECK_INPUT_GROUP_COLUMNS: Code = Code::new("E0525");
pub const CHECK_INPUT_GROUP_STEP: Code = Code::new("E0526");
pub const CHECK_OUTPUT_KEY: Code = Code::new("E0527");
pub const CHECK_OUTPUT_WITHOUT_LOSS: Code = Code::new("E0528");
pub const CHECK_OUTPUT_LABELS: Code = Code::new("E0529");
// E059x: experiments (taken from the end of the range).
pub const CHECK_EXPERIMENT_BASE: Code = Code::new("E0590");
pub const CHECK_EXPERIMENT_SETTING: Code = Code::new("E0591");
pub const CHECK_EXPERIMENT_EMPTY: Code = Code::new("E0592");
pub const CHECK_EXPERIMENT_TUPLE: Code = Code::new("E0593");
pub const CHECK_EXPERIMENT_SELECT: Code = Code::new("E0594");
pub const CHECK_EXPERIMENT_TRIALS: Code = Code::new("E0595");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0200, "unknown layer"),
    code_info!(E0201, "unknown argument"),
    code_info!(E0202, "unknown name in a model body"),
    code_info!(E0203, "unknown model"),
    code_info!(E0204, "unknown data pipeline"),
    code_info!(E0205, "duplicate block name"),
    code_info!(E0206, "duplicate argument"),
    code_info!(E0207, "binding used before it is bound"),
    code_info!(E0208, "value computed but never used"),
    code_info!(E0209, "model has no body"),
    code_info!(E0210, "duplicate model input"),
    code_info!(E0211, "unknown train setting"),
    code_info!(E0212, "unknown option value"),
    code_info!(E0213, "not a layer or a value"),
    code_info!(E0214, "no previous value for a layer to apply to"),
    code_info!(E0215, "two layers with the same name"),
    code_info!(E0216, "a layer name that is not an identifier"),
    code_info!(E0217, "pipeline data set larger than the data budget"),
    code_info!(E0300, "missing required argument"),
    code_info!(E0301, "too many positional arguments"),
    code_info!(E0302, "argument of the wrong type"),
    code_info!(E0303, "argument out of range"),
    code_info!(E0304, "unknown dtype"),
    code_info!(E0305, "layer needs a float tensor"),
    code_info!(E0306, "layer needs an integer tensor"),
    code_info!(E0307, "inputs of different dtypes"),
    code_info!(E0308, "wrong number of layer inputs"),
    code_info!(E0400, "tensor of the wrong rank"),
    code_info!(E0401, "incompatible shapes"),
    code_info!(E0402, "window larger than its input"),
    code_info!(E0403, "invalid reshape"),
    code_info!(E0404, "symbol bound to two sizes"),
    code_info!(E0405, "body does not compute the declared output type"),
    code_info!(E0406, "size is zero or too large"),
    code_info!(E0407, "size must be known"),
    code_info!(E0408, "model has more layers than the limit"),
    code_info!(E0409, "parameters need more bytes than the limit"),
    code_info!(
        E0499,
        "masked input to a layer that cannot use the mask yet"
    ),
    code_info!(E0500, "missing train setting"),
    code_info!(E0501, "duplicate train setting"),
    code_info!(E0502, "loss does not fit the model output"),
    code_info!(E0503, "labels do not fit the loss"),
    code_info!(E0504, "data does not fit the model input"),
    code_info!(
        E0505,
        "early stopping monitors a value the run does not log"
    ),
    code_info!(E0506, "loss and output activation disagree"),
    code_info!(E0507, "model cannot be trained as written"),
    code_info!(E0508, "schedule without an end before another in a chain"),
    code_info!(E0510, "metric does not fit the loss"),
    code_info!(E0511, "class weights do not fit the loss or output"),
    code_info!(E0520, "metric listed twice"),
    code_info!(E0521, "top-k accuracy over every class"),
    code_info!(
        E0522,
        "output does not match the input it is trained to rebuild"
    ),
    code_info!(E0523, "setting needs class labels beside `target inputs`"),
    code_info!(E0524, "input groups do not match the model's inputs"),
    code_info!(
        E0525,
        "input group columns overlap, are unknown or left over"
    ),
    code_info!(E0526, "step does not fit the pipeline's input groups"),
    code_info!(
        E0527,
        "train setting names an output the model does not have"
    ),
    code_info!(E0528, "model output without a loss"),
    code_info!(E0529, "targets do not match the model's outputs"),
    code_info!(E0590, "experiment base is not a train block"),
    code_info!(E0591, "experiment sets an unknown setting"),
    code_info!(E0592, "vary lists no values"),
    code_info!(E0593, "tied vary value of the wrong length"),
    code_info!(E0594, "experiment selects by a value the trials do not log"),
    code_info!(E0595, "experiment has more trials than the limit"),
];

// The `code_info!` macro refers to codes by their literal names.
const E0200: Code = CHECK_UNKNOWN_LAYER;
const E0201: Code = CHECK_UNKNOWN_ARGUMENT;
const E0202: Code = CHECK_UNKNOWN_NAME;
const E0203: Code = CHECK_UNKNOWN_MODEL;
const E0204: Code = CHECK_UNKNOWN_DATA;
const E0205: Code = CHECK_DUPLICATE_BLOCK;
const E0206: Code = CHECK_DUPLICATE_ARGUMENT;
const E0207: Code = CHECK_USE_BEFORE_LET;
const E0208: Code = CHECK_UNUSED_VALUE;
const E0209: Code = CHECK_EMPTY_MODEL;
const E0210: Code = CHECK_DUPLICATE_INPUT;
const E0211: Code = CHECK_UNKNOWN_SETTING;
const E0212: Code = CHECK_UNKNOWN_CHOICE;
const E0213: Code = CHECK_NOT_A_LAYER;
const E0214: Code = CHECK_NO_IMPLICIT_INPUT;
const E0215: Code = CHECK_DUPLICATE_LAYER_NAME;
const E0216: Code = CHECK_INVALID_LAYER_NAME;
const E0217: Code = CHECK_DATA_SET_TOO_LARGE;
const E0300: Code = CHECK_MISSING_ARGUMENT;
const E0301: Code = CHECK_TOO_MANY_ARGUMENTS;
const E0302: Code = CHECK_ARGUMENT_TYPE;
const E0303: Code = CHECK_ARGUMENT_RANGE;
const E0304: Code = CHECK_UNKNOWN_DTYPE;
const E0305: Code = CHECK_NEEDS_FLOAT;
const E0306: Code = CHECK_NEEDS_INTEGER;
const E0307: Code = CHECK_DTYPE_MISMATCH;
const E0308: Code = CHECK_INPUT_COUNT;
const E0400: Code = CHECK_RANK;
const E0401: Code = CHECK_SHAPE_MISMATCH;
const E0402: Code = CHECK_WINDOW_TOO_LARGE;
const E0403: Code = CHECK_RESHAPE;
const E0404: Code = CHECK_SYMBOL_CONFLICT;
const E0405: Code = CHECK_OUTPUT_MISMATCH;
const E0406: Code = CHECK_SIZE_INVALID;
const E0407: Code = CHECK_SIZE_UNKNOWN;
const E0408: Code = CHECK_TOO_MANY_LAYERS;
const E0409: Code = CHECK_TOO_MANY_PARAMS;
const E0499: Code = CHECK_MASK_UNSUPPORTED;
const E0500: Code = CHECK_MISSING_SETTING;
const E0501: Code = CHECK_DUPLICATE_SETTING;
const E0502: Code = CHECK_LOSS_OUTPUT;
const E0503: Code = CHECK_LABELS_LOSS;
const E0504: Code = CHECK_DATA_INPUT;
const E0505: Code = CHECK_MONITOR;
const E0506: Code = CHECK_LOSS_ACTIVATION;
const E0507: Code = CHECK_NOT_TRAINABLE;
const E0508: Code = CHECK_SCHEDULE_CHAIN;
const E0510: Code = CHECK_METRIC_LOSS;
const E0511: Code = CHECK_CLASS_WEIGHT;
const E0520: Code = CHECK_DUPLICATE_METRIC;
const E0521: Code = CHECK_TOP_K_ALL_CLASSES;
const E0522: Code = CHECK_TARGET_INPUTS_SHAPE;
const E0523: Code = CHECK_TARGET_INPUTS_SETTING;
const E0524: Code = CHECK_INPUT_GROUP_NAME;
const E0525: Code = CHECK_INPUT_GROUP_COLUMNS;
const E0526: Code = CHECK_INPUT_GROUP_STEP;
const E0527: Code = CHECK_OUTPUT_KEY;
const E0528: Code = CHECK_OUTPUT_WITHOUT_LOSS;
const E0529: Code = CHECK_OUTPUT_LABELS;
const E0590: Code = CHECK_EXPERIMENT_BASE;
const E0591: Code = CHECK_EXPERIMENT_SETTING;
const E0592: Code = CHECK_EXPERIMENT_EMPTY;
const E0593: Code = CHECK_EXPERIMENT_TUPLE;
const E0594: Code = CHECK_EXPERIMENT_SELECT;
const E0595: Code = CHECK_EXPERIMENT_TRIALS;
