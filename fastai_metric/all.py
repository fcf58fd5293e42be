"Everything a user needs: `from fastai_metric.all import *`"
from .core import *
from .heads import *
from .tsne import *
from .data import *
from .miners import *
from .losses import *
from .batches import *
from .triplet import *
from .hierarchy import *
from .mix import *
from .retrieval import *
from .live import *
from .interpret import *
from .scale import *
from .extra_heads import *
from .compare import *
from .pretrained import *
