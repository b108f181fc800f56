//! Shared by both targets: parse a blob and, if it loads, exercise every accessor and
//! run the interpreter once.

use microcnn_core::{Interpreter, Model};

/// Largest arena the targets allocate to run a loaded model.
const MAX_ARENA: usize = 1 << 20;

pub fn exercise(data: &[u8]) {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let arena = model.arena_size();
    let _ = model.tensor_count();
    let _ = (model.input(), model.output());
    for i in 0..model.op_count() {
        if let Ok(op) = model.operator(i) {
            let _ = (op.params_count(), op.constant_bytes(), op.kind, op.params);
            let _ = model.tensor(op.output);
            for input in op.inputs.iter() {
                if let (Ok(a), Ok(b)) = (model.tensor(input), model.tensor(op.output)) {
                    let _ = op.macs(&a.shape, &b.shape);
                }
            }
        }
    }
    let _ = model.operator(model.op_count()); // one past the end must be an error
    for label in model.labels() {
        let _ = label.len();
    }
    let _ = (model.name(), model.tool(), model.preprocess(), model.output_dims());

    if arena <= MAX_ARENA {
        let mut buf = vec![0u8; arena];
        if let Ok(mut interp) = Interpreter::new(&model, &mut buf) {
            for (i, x) in interp.input_mut().iter_mut().enumerate() {
                *x = data.get(i % data.len()).copied().unwrap_or(0) as i8;
            }
            let _ = interp.invoke();
            let _ = interp.output();
            let _ = interp.top_k::<3>();
        }
    }
}
