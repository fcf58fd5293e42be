"""Everything a user calls: `from fastai_metric.all import *`. Helpers stay importable from their modules.

Importing also adds the library's `Learner` methods (`to_arcface`, `to_triplet`, `add_center_loss`, `to_amp`...) and applies the
two `patches` that let `distrib_ctx` train on CPUs; nothing else of fastai changes."""
from .classifier import MetricHead, EmbeddingOutput, swap_classifier, classifier_layer, final_layer
from .embeddings import EmbeddingModel, embedding_model, get_embeddings, SHIFTS
from .data import digits_folder, digits_arrays, fashion_mnist, FASHION_CLASSES, mnist_5k, array_dls
from .precision import DeviceMixedPrecision, matmul_speedup, cpu_description
from .distributed import GatheredLoss
from .heads import (CosineProduct, ArcMarginProduct, AddMarginProduct, SphereProduct, L2ConstrainedLinear, LabelCatcher,
                    XFaceNet, L2ConstrainedNet)
from .extra_heads import SubCenterArcMarginProduct, AdaFaceProduct
from .search import Search, knn
from .evaluation import retrieval_metrics, cluster_scores, knn_classify, knn_accuracy
from .open_set import tpr_at_fpr, identification_rate, open_set_scores, open_set_auroc, plot_roc
from .tsne import tsne_2d, plot_2d, plot_tsne
from .miners import (distance_matrix, TripletMiner, AllTripletsMiner, HardTripletsMiner, SemiHardTripletsMiner,
                     HardClusterMiner, MemoryBankMiner)
from .losses import TripletLossWithMiner, CenterLoss, PrototypicalLoss
from .batches import PKSampler, balanced_dl
from .metric_learner import MetricLoss, register_loss
from .hierarchy import HierarchicalTripletLoss
from .loss_terms import EmbeddingLoss, WrapCenterLoss, LossPart
from .train_metrics import RetrievalMetric, RecallAtK, PrecisionAtK, MapAtR
from .interpret import MetricInterpretation
from .index import EmbeddingIndex, SearchResult
from .pretrained import pretrained_weights, pretrained_kwargs
from .compare import METHODS, compare, train_method, protocol_result, embed, body_layer, tsne_grid, results_markdown
from .augment import RandomThickness, RandomElastic, rotated_classes
from .omniglot import (omniglot, omniglot_runs, omniglot_images, omniglot_dls, OmniglotInk, crop_ink, character_of,
                       drawer_of, alphabet_of, alphabet_tree)
from .few_shot import one_shot_error, few_shot_accuracy, show_one_shot, embed_files, array_loader, omniglot_items
from . import patches as _patches            # the `distrib_ctx` fixes for CPUs (see `fastai_metric.patches`)
