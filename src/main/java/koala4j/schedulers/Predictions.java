package koala4j.schedulers;

import java.util.List;

import koala4j.tensor.Tensor;

/** The prediction_type conversions the schedulers share. */
final class Predictions {

    private Predictions() {
    }

    static Scheduler.Prediction from(SchedulerConfig cfg) {
        return switch (cfg.choice("prediction_type", "epsilon", List.of("epsilon", "v_prediction", "sample"))) {
            case "v_prediction" -> Scheduler.Prediction.V_PREDICTION;
            case "sample" -> Scheduler.Prediction.SAMPLE;
            default -> Scheduler.Prediction.EPSILON;
        };
    }

    /** x0 from the model output for sigma-parameterised (Karras) samples x = x0 + σ·ε. */
    static Tensor originalFromSigma(Scheduler.Prediction prediction, Tensor out, Tensor sample, double sigma) {
        return switch (prediction) {
            case EPSILON -> sample.sub(out.mul((float) sigma));
            // out * (-σ / sqrt(σ²+1)) + sample / (σ²+1)
            case V_PREDICTION -> out.mul((float) (-sigma / Math.sqrt(sigma * sigma + 1)))
                    .add(sample.mul((float) (1 / (sigma * sigma + 1))));
            case SAMPLE -> out;
        };
    }

    /** x0 and ε for variance-preserving samples x = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε. */
    static Tensor[] originalAndEpsilon(Scheduler.Prediction prediction, Tensor out, Tensor sample, double alphaProd) {
        double a = Math.sqrt(alphaProd);
        double b = Math.sqrt(1 - alphaProd);
        return switch (prediction) {
            case EPSILON -> new Tensor[] {sample.sub(out.mul((float) b)).mul((float) (1 / a)), out};
            case SAMPLE -> new Tensor[] {out, sample.sub(out.mul((float) a)).mul((float) (1 / b))};
            case V_PREDICTION -> new Tensor[] {sample.mul((float) a).sub(out.mul((float) b)),
                out.mul((float) a).add(sample.mul((float) b))};
        };
    }
}
